package statement

import "net/url"

// Call is what lablog indexes of one /addLog call: the statement's fields,
// and whose it is, in which course, on which kind of hardware. The call's
// query decides those three (the UIs send "none" when their page had none);
// where it is silent the statement's actor.id and actor.course do.
type Call struct {
	Fields
	User, Course, Hardware *string
}

// ParseCall reads a call from its query (as lablog kept it) and body.
func ParseCall(query string, body []byte) Call {
	c := Call{Fields: Parse(body)}
	q, _ := url.ParseQuery(query) // what cannot be parsed is as if absent
	param := func(key string, fallback *string) *string {
		if v := q.Get(key); v != "" {
			return &v
		}
		return fallback
	}
	c.User = param("username", c.Fields.User)
	c.Course = param("course", c.Fields.Course)
	c.Hardware = param("hardware", nil)
	return c
}
