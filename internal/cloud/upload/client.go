package upload

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// NewClient is the client the uploader uses, for tools that read the
// bucket (lablog fleet).
func NewClient(o Options, creds Credentials) *s3.Client {
	o.Concurrency = max(o.Concurrency, 1)
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return newClient(o, creds)
}

// newClient builds an S3 client from lablog's configuration alone: static
// keys, the endpoint given, no shared config files, no instance metadata,
// no AWS_* environment variables, no proxy from the environment. Checksums
// are computed only where the API requires them (S3-compatible servers
// reject the SDK's default trailing checksums); lablog sends its own
// Content-MD5 and x-amz-checksum-sha256 instead. The SDK does not retry:
// the uploader's own backoff does, so its state is what the page shows.
func newClient(o Options, creds Credentials) *s3.Client {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   o.Concurrency,
		IdleConnTimeout:       90 * time.Second,
	}
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(o.Endpoint),
		Region:                     o.Region,
		UsePathStyle:               o.PathStyle,
		Credentials:                credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Retryer:                    aws.NopRetryer{},
		HTTPClient:                 &http.Client{Transport: transport},
		HTTPSignerV4:               clockSigner{signer: v4.NewSigner(), now: o.Now},
	})
}

// clockSigner signs with the uploader's clock, so tests can move it.
type clockSigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (s clockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.signer.SignHTTP(ctx, creds, r, payloadHash, service, region, s.now().UTC(), optFns...)
}

// withPayloadHash gives the signer the body's SHA-256, which the uploader
// has computed already, so the SDK does not read the file a second time.
func withPayloadHash(hexSHA256 string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Build.Add(middleware.BuildMiddlewareFunc("lablogPayloadHash",
				func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
					return next.HandleBuild(v4.SetPayloadHash(ctx, hexSHA256), in)
				}), middleware.After)
		})
	}
}

// httpStatus is the HTTP status of a failed call, 0 when none came back.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// apiCode is the S3 error code of a failed call ("" when none came back).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// alreadyExists: the conditional PutObject found an object at the key.
func alreadyExists(err error) bool {
	switch httpStatus(err) {
	case http.StatusPreconditionFailed:
		return true
	}
	return apiCode(err) == "PreconditionFailed"
}

// hint says in words what an S3 error most likely means.
func hint(err error) string {
	switch code := apiCode(err); code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "XAdminUserNotFound":
		return "credentials refused (" + code + "): check upload.credentials_file"
	case "RequestTimeTooSkewed":
		return "clock skew: the server refused a request signed at this machine's time (" + code + ")"
	case "NoSuchBucket":
		return "no such bucket (" + code + "): check upload.bucket"
	}
	// A status means the server answered, even when the error's body was
	// cut short (a server may answer 403 before reading the upload and
	// close the connection): the status says what happened, and the
	// transport's errors below are only for calls that got no answer.
	switch st := httpStatus(err); {
	case st >= 500:
		return "server error (HTTP " + http.StatusText(st) + ")"
	case st == http.StatusForbidden:
		// S3 answers 403 for a wrong key or secret, a key without rights,
		// and a skewed clock; only the code it could not send would say which.
		return "credentials refused (HTTP 403, no reason readable): check upload.credentials_file, the key's rights on the bucket and this machine's clock"
	case st != 0:
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "server unreachable"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return "server unreachable (connection closed without an answer)"
	}
	return ""
}
