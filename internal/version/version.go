// Package version holds the manager's build identity. Version, Commit and
// Date are set at link time:
//
//	go build -ldflags "-X github.com/token-operator/token-operator/internal/version.Version=v1.2.3 ..."
//
// Without them, Commit and Date fall back to the VCS stamp Go records in the
// binary (runtime/debug.ReadBuildInfo), and then to "unknown".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is the resolved build identity.
type Info struct {
	Version   string
	Commit    string
	Date      string
	GoVersion string
}

// Get returns the build identity, filling what ldflags did not set from the
// binary's embedded build information.
func Get() Info {
	return resolve(Version, Commit, Date, debug.ReadBuildInfo)
}

func resolve(v, commit, date string, read func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: v, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if i.Commit == "" || i.Date == "" {
		if bi, ok := read(); ok && bi != nil {
			dirty := false
			var rev, at string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.time":
					at = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if i.Commit == "" && rev != "" {
				i.Commit = rev
				if dirty {
					i.Commit += "-dirty"
				}
			}
			if i.Date == "" {
				i.Date = at
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the one-line form `manager --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("token-operator %s (commit %s, built %s, %s)", i.Version, i.Commit, i.Date, i.GoVersion)
}
