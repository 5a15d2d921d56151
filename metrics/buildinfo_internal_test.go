package metrics

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuildLabels(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		if rev != "" {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: "vcs.revision", Value: rev})
		}
		if modified != "" {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: "vcs.modified", Value: modified})
		}
		return bi
	}
	cases := []struct {
		name                      string
		version, revision         string
		bi                        *debug.BuildInfo
		wantVersion, wantRevision string
	}{
		{"given wins", "1.2.3", "abc", vcs("def", "true"), "1.2.3", "abc"},
		{"revision from vcs", "dev", "", vcs("def", "false"), "dev", "def"},
		{"modified tree", "dev", "", vcs("def", "true"), "dev", "def-modified"},
		{"no vcs", "dev", "", vcs("", ""), "dev", "unknown"},
		{"no build info", "", "", nil, "unknown", "unknown"},
		{"devel is no version", "", "abc", vcs("", ""), "unknown", "abc"},
		{"go install version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0", "unknown"},
	}
	for _, c := range cases {
		v, r := buildLabels(c.version, c.revision, c.bi)
		require.Equal(t, c.wantVersion, v, c.name)
		require.Equal(t, c.wantRevision, r, c.name)
	}
}
