// Package secretdata renders the output Secret of a TokenRequest and reads
// back what the operator wrote there. It is pure: no client, no clock.
package secretdata

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// Token is what the Secret is rendered from.
type Token struct {
	AccessToken string
	TokenType   string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	RefreshAt   time.Time // when the operator plans the refresh
	RefreshHint time.Time // the token service's own refresh hint; zero if none
	Scopes      []string
	// AWS, when set, are temporary AWS credentials: the Secret holds them in
	// the forms AWS SDKs read, and no access_token or token_type.
	AWS *AWSKeys
}

// Input is everything the Secret depends on.
type Input struct {
	TokenRequestName string
	ClientID         string
	Template         *v1.SecretTemplate
	InputHash        string // what produced the token (issuer, client, scopes, parameters, credential)
	// RefreshRequest is the TokenRequest's refresh-requested-at value this
	// write satisfies; kept on the Secret so that a stale read of the
	// TokenRequest's status cannot act on it twice.
	RefreshRequest string
	Token          Token
}

// Rendered is the desired content of the output Secret.
type Rendered struct {
	Type        corev1.SecretType
	Labels      map[string]string
	Annotations map[string]string
	Data        map[string][]byte
}

// templateValues are what secretTemplate.data templates see.
type templateValues struct {
	AccessToken string
	TokenType   string
	ExpiresAt   string
	Scopes      []string
	ClientID    string
	// AWS credentials; empty for an OAuth2 token (and AccessToken empty for AWS).
	AccessKeyID, SecretAccessKey, SessionToken string
}

// TemplateError is a secretTemplate that is refused or does not render. Its
// message never contains rendered output or anything taken from the token.
type TemplateError struct {
	// Field is FieldData (also when empty), FieldLabels, FieldAnnotations
	// or FieldType.
	Field string
	// Key is the data key, label or annotation key, or the Secret type.
	Key    string
	Reason string
}

func (e *TemplateError) Error() string {
	switch e.Field {
	case "", FieldData:
		return fmt.Sprintf("secretTemplate.data[%q]: %s", e.Key, e.Reason)
	case FieldType:
		return fmt.Sprintf("secretTemplate.type %q: %s", e.Key, e.Reason)
	default:
		return fmt.Sprintf("secretTemplate.%s[%q]: %s", e.Field, e.Key, e.Reason)
	}
}

// Render builds the output Secret's type, labels, annotations and data. It
// validates the template first, as ValidateTemplate does, so a template
// outside the allowed subset never runs.
func Render(in Input) (Rendered, error) {
	c, err := compile(in.Template)
	if err != nil {
		return Rendered{}, err
	}
	data, err := renderData(in, c)
	if err != nil {
		return Rendered{}, err
	}
	r := Rendered{Type: corev1.SecretTypeOpaque, Labels: map[string]string{}, Annotations: map[string]string{}, Data: data}
	if t := in.Template; t != nil {
		if t.Type != "" {
			r.Type = t.Type
		}
		copyInto(r.Labels, t.Labels)
		copyInto(r.Annotations, t.Annotations)
	}
	r.Labels[v1.LabelManagedBy] = v1.ManagedByValue
	r.Labels[v1.LabelTokenRequest] = TokenRequestLabel(in.TokenRequestName)
	r.Annotations[v1.AnnotationTokenRequestName] = in.TokenRequestName
	if keys := templateKeys(in.Template); keys != "" {
		r.Annotations[AnnotationTemplateKeys] = keys
	}
	r.Annotations[v1.AnnotationIssuedAt] = in.Token.IssuedAt.UTC().Format(time.RFC3339Nano) // exact: tells this token from a newer one
	r.Annotations[v1.AnnotationExpiresAt] = formatTime(in.Token.ExpiresAt)
	r.Annotations[v1.AnnotationRefreshAt] = formatTime(in.Token.RefreshAt)
	if !in.Token.RefreshHint.IsZero() {
		r.Annotations[AnnotationRefreshHint] = formatTime(in.Token.RefreshHint)
	}
	r.Annotations[v1.AnnotationInputHash] = in.InputHash
	if in.RefreshRequest != "" {
		r.Annotations[v1.AnnotationRefreshRequestedAt] = in.RefreshRequest
	}
	r.Annotations[AnnotationTemplateHash] = TemplateHash(in.Template)
	r.Annotations[AnnotationDataHash] = DataHash(data)
	return r, nil
}

// Annotations the operator keeps for itself; not part of the user contract.
const (
	AnnotationRefreshHint  = "tokens.token-operator.io/refresh-hint"
	AnnotationTemplateHash = "tokens.token-operator.io/template-hash"
	AnnotationDataHash     = "tokens.token-operator.io/data-hash"
	// AnnotationTemplateKeys lists the labels and annotations the template
	// set, so that those a later template drops are removed.
	AnnotationTemplateKeys = "tokens.token-operator.io/template-keys"
)

// ownedAnnotations are the bookkeeping annotations the operator writes; one
// that a render leaves out is removed, so that no stale value (a refresh
// hint from an earlier token) outlives the write.
var ownedAnnotations = []string{
	v1.AnnotationIssuedAt, v1.AnnotationExpiresAt, v1.AnnotationRefreshAt, AnnotationRefreshHint,
	v1.AnnotationInputHash, v1.AnnotationRefreshRequestedAt, AnnotationTemplateHash, AnnotationDataHash,
	AnnotationTemplateKeys, v1.AnnotationTokenRequestName,
}

// maxLabelValue is the longest label value Kubernetes accepts.
const maxLabelValue = 63

// TokenRequestLabel is the token-request label value for a TokenRequest
// name: the name itself when it fits, else a prefix and a digest of it.
func TokenRequestLabel(name string) string {
	if len(name) <= maxLabelValue {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxLabelValue-11] + "-" + hex.EncodeToString(sum[:5])
}

// templateKeys records the template's labels and annotations as
// "l:<key>" and "a:<key>", sorted and comma-separated.
func templateKeys(t *v1.SecretTemplate) string {
	if t == nil {
		return ""
	}
	var keys []string
	for _, k := range sortedKeys(t.Labels) {
		keys = append(keys, "l:"+k)
	}
	for _, k := range sortedKeys(t.Annotations) {
		keys = append(keys, "a:"+k)
	}
	return strings.Join(keys, ",")
}

func renderData(in Input, c *compiled) (map[string][]byte, error) {
	expires := formatTime(in.Token.ExpiresAt)
	var data map[string][]byte
	if in.Token.AWS != nil {
		data = awsData(*in.Token.AWS, expires)
	} else {
		data = map[string][]byte{
			v1.KeyAccessToken: []byte(in.Token.AccessToken),
			v1.KeyTokenType:   []byte(in.Token.TokenType),
			v1.KeyExpiresAt:   []byte(expires),
		}
	}
	if in.Template == nil {
		return data, nil
	}
	values := templateValues{AccessToken: in.Token.AccessToken, TokenType: in.Token.TokenType, ExpiresAt: expires, Scopes: in.Token.Scopes, ClientID: in.ClientID}
	if k := in.Token.AWS; k != nil {
		values.AccessKeyID, values.SecretAccessKey, values.SessionToken = k.AccessKeyID, k.SecretAccessKey, k.SessionToken
	}
	rendered, err := c.render(values, in.Template.Type)
	if err != nil {
		return nil, err
	}
	for k, v := range rendered {
		data[k] = v
	}
	return data, nil
}

// templateReason keeps the parser's own diagnosis of the template text;
// parsing sees no token.
func templateReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
		return msg[i+2:]
	}
	return msg
}

func validDataKey(k string) bool {
	if k == "" || len(k) > 253 || k == "." || strings.HasPrefix(k, "..") {
		return false
	}
	return strings.Trim(k, "-_.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// DataHash is a digest of the Secret's data, used to notice hand edits.
func DataHash(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range sortedKeys(data) {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// TemplateHash is a digest of the secretTemplate, to notice spec changes that
// need a re-render but no new token.
func TemplateHash(t *v1.SecretTemplate) string {
	if t == nil {
		return "none"
	}
	b, _ := json.Marshal(t) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:32]
}

// State is what the operator reads back from an existing output Secret.
type State struct {
	IssuedAt, ExpiresAt, RefreshHint time.Time
	InputHash, TemplateHash          string
	RefreshRequest                   string
	// Intact is true when the data is exactly what the operator wrote.
	Intact bool
	// HasToken is true when the Secret holds a token at all.
	HasToken bool
}

// Read extracts the operator's bookkeeping from a Secret.
func Read(s *corev1.Secret) State {
	a := s.Annotations
	return State{
		IssuedAt:       parseTime(a[v1.AnnotationIssuedAt]),
		ExpiresAt:      parseTime(a[v1.AnnotationExpiresAt]),
		RefreshHint:    parseTime(a[AnnotationRefreshHint]),
		InputHash:      a[v1.AnnotationInputHash],
		TemplateHash:   a[AnnotationTemplateHash],
		RefreshRequest: a[v1.AnnotationRefreshRequestedAt],
		Intact:         a[AnnotationDataHash] != "" && a[AnnotationDataHash] == DataHash(s.Data),
		HasToken:       len(s.Data) > 0 && !parseTime(a[v1.AnnotationExpiresAt]).IsZero(),
	}
}

// Apply writes r into s, keeping labels and annotations others added and
// removing those the operator or an earlier template set that r no longer
// has. It reports whether s changed.
func Apply(s *corev1.Secret, r Rendered) bool {
	changed := false
	if s.Type == "" {
		s.Type = r.Type // the type of an existing Secret is immutable
		changed = true
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	changed = prune(s, r) || changed
	changed = mergeInto(s.Labels, r.Labels) || changed
	changed = mergeInto(s.Annotations, r.Annotations) || changed
	if !equalData(s.Data, r.Data) {
		s.Data = make(map[string][]byte, len(r.Data))
		for k, v := range r.Data {
			s.Data[k] = append([]byte(nil), v...)
		}
		changed = true
	}
	return changed
}

// prune removes from s what the operator wrote earlier and r leaves out.
func prune(s *corev1.Secret, r Rendered) bool {
	changed := false
	drop := func(m, keep map[string]string, k string) {
		if _, ok := m[k]; ok {
			if _, kept := keep[k]; !kept {
				delete(m, k)
				changed = true
			}
		}
	}
	for _, entry := range strings.Split(s.Annotations[AnnotationTemplateKeys], ",") {
		if k, ok := strings.CutPrefix(entry, "l:"); ok {
			drop(s.Labels, r.Labels, k)
		} else if k, ok := strings.CutPrefix(entry, "a:"); ok {
			drop(s.Annotations, r.Annotations, k)
		}
	}
	for _, k := range ownedAnnotations {
		drop(s.Annotations, r.Annotations, k)
	}
	return changed
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func mergeInto(dst, src map[string]string) bool {
	changed := false
	for k, v := range src {
		if old, ok := dst[k]; !ok || old != v {
			dst[k] = v
			changed = true
		}
	}
	return changed
}

func copyInto(dst, src map[string]string) {
	for k, v := range src {
		dst[k] = v
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
