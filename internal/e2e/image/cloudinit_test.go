package image

import "testing"

// The phase line splits cloud-init's stages into those every service waits
// for (up to the network stage, before sysinit.target) and those beside
// them, adds the CPU its units used, and names a stage that has not run
// (yet: boot 2 reads the units before cloud-final starts).
func TestCloudInitSummary(t *testing.T) {
	unit := func(start, end, cpu string) string {
		return "LoadState=loaded\nInactiveExitTimestampMonotonic=" + start +
			"\nActiveEnterTimestampMonotonic=" + end + "\nInactiveEnterTimestampMonotonic=0\nCPUUsageNSec=" + cpu + "\n"
	}
	shown := map[string]string{
		"cloud-init-main":    unit("2000000", "12500000", "9000000000"),
		"cloud-init-local":   unit("12500000", "14500000", "20000000"),
		"cloud-init-network": unit("15000000", "15500000", "[not set]"),
		"cloud-init":         "LoadState=not-found\nInactiveExitTimestampMonotonic=0\n",
		"cloud-config":       unit("30000000", "34000000", "10000000"),
		"cloud-final":        unit("0", "0", "0"),
	}
	want := "cloud-init ran 17.0 s: 13.0 s before sysinit.target, 4.0 s beside the services; 9.0 s CPU " +
		"(init-main 10.5 s, init-local 2.0 s, init-network 0.5 s, config 4.0 s, cloud-final not run (yet))"
	if got := cloudInitSummary(shown); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
