package tokensource

import "net/url"

// CheckConfiguredHost refuses, before any cache lookup or network call, a
// request whose configured issuer URL is on a host AllowedHosts does not
// list. The transport guard still checks every request the engine makes
// (discovery results, redirects).
func (r Request) CheckConfiguredHost() error {
	return r.checkConfiguredHosts(r.grant())
}

func (r Request) checkConfiguredHosts(g grant) error {
	for _, ep := range g.endpoints(r) {
		u, err := url.Parse(ep.url)
		if err != nil || u.Host == "" {
			return &ConfigError{Field: "issuer", Message: "the issuer URL does not parse"}
		}
		if !hostAllowed(r.AllowedHosts, u) {
			return &HostNotAllowedError{Host: u.Host}
		}
	}
	return nil
}

// HostsAllow reports whether a consent list allows host ("host" or
// "host:port") for scheme, by the rules AllowedHosts follow.
func HostsAllow(hosts []string, scheme, host string) bool {
	return hostAllowed(hosts, &url.URL{Scheme: scheme, Host: host})
}

// ServiceHost is the host of the endpoint the call starts at, for metric
// labels; "" when there is none.
func (r Request) ServiceHost() string {
	eps := r.grant().endpoints(r)
	if len(eps) == 0 {
		return ""
	}
	u, err := url.Parse(eps[0].url)
	if err != nil {
		return ""
	}
	return u.Host
}

// secureScheme accepts https, and plain http only on the loopback names the
// CRD allows it for; whether the operator allows those is Engine.Validate's
// call.
func secureScheme(u *url.URL) bool {
	if u.Host == "" {
		return false
	}
	return u.Scheme == "https" || (u.Scheme == "http" && loopbackHost(u))
}
