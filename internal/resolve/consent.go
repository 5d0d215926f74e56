package resolve

// ConsentHosts is the host list a credential's allowed-issuers annotation
// grants, read as the operator reads it; tokensource.Request.AllowedHosts
// takes it. The docs tests check the documented rule against it.
func ConsentHosts(annotations map[string]string) []string { return allowedHosts(annotations) }
