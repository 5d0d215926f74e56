package secretdata

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Rendering a validated template always ends: range runs only over .Scopes
// (at most MaxTemplateScopes) and never nested, and there is no recursion,
// so at most maxSteps nodes are evaluated. Functions stop working after
// maxFuncWork bytes and the output stops at MaxRenderedBytes, both shared by
// all keys of one Secret; so the time is linear in the template's size.

// errStop aborts template execution; its text is never shown.
var errStop = errors.New("stop")

// budget is shared by all templates of one Secret. reason is set, with a
// fixed text, once a limit is passed or a function failed.
type budget struct {
	out, work int
	reason    string
}

func (b *budget) stop(reason string) {
	if b.reason == "" {
		b.reason = reason
	}
}

// spend charges n bytes of function work; false once over the limit.
func (b *budget) spend(n int) bool {
	if b.reason != "" {
		return false
	}
	if b.work += n; b.work > maxFuncWork {
		b.stop(reasonTooMuch)
		return false
	}
	return true
}

// cappedWriter collects one key's output and aborts execution at the cap.
type cappedWriter struct {
	b   *budget
	buf bytes.Buffer
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.b.reason != "" {
		return 0, errStop
	}
	if w.b.out += len(p); w.b.out > MaxRenderedBytes {
		w.b.stop(reasonTooLarge)
		return 0, errStop
	}
	return w.buf.Write(p)
}

// str runs a string function within the budget: cost is charged before,
// the result's length after. A panic stops rendering with a fixed reason.
func (b *budget) str(cost int, f func() string) (out string) {
	if !b.spend(cost) {
		return ""
	}
	defer func() {
		if recover() != nil {
			b.stop(reasonNoRender)
			out = ""
		}
	}()
	out = f()
	if !b.spend(len(out)) {
		return ""
	}
	return out
}

// funcs are the allowed functions bound to one Secret's budget; and, or and
// not are text/template's builtins. None returns an error.
func (b *budget) funcs() template.FuncMap {
	return template.FuncMap{
		"b64enc": func(s string) string {
			return b.str(len(s), func() string { return base64.StdEncoding.EncodeToString([]byte(s)) })
		},
		"toJson": func(v any) string {
			return b.str(sizeOf(v), func() string { return toJSON(v) })
		},
		"quote": func(s string) string {
			return b.str(len(s), func() string { return strconv.Quote(s) })
		},
		"rfc3339": func(s string) string {
			return b.str(min(len(s), 65), func() string {
				if t, ok := parseRFC3339(s); ok {
					return t.UTC().Format(time.RFC3339)
				}
				return ""
			})
		},
		"unixEpoch": func(s string) int64 {
			if t, ok := parseRFC3339(s); ok && b.spend(len(s)) {
				return t.Unix()
			}
			return 0
		},
		"join": func(sep string, list []string) string {
			return b.str(sizeOf(list)+len(sep)*len(list), func() string { return strings.Join(list, sep) })
		},
		"upper": func(s string) string { return b.str(len(s), func() string { return strings.ToUpper(s) }) },
		"lower": func(s string) string { return b.str(len(s), func() string { return strings.ToLower(s) }) },
		"trim":  func(s string) string { return b.str(len(s), func() string { return strings.TrimSpace(s) }) },
		"print": func(args ...any) string {
			return b.str(sizeOf(args), func() string { return fmt.Sprint(args...) })
		},
		"println": func(args ...any) string {
			return b.str(sizeOf(args), func() string { return fmt.Sprintln(args...) })
		},
	}
}

// parseRFC3339 reads .ExpiresAt; anything longer than an RFC 3339 time is
// refused before parsing, so the work is constant.
func parseRFC3339(s string) (time.Time, bool) {
	if len(s) > 64 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func toJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return "" // cannot happen for the values templates see
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// sizeOf estimates the bytes a function reads from v.
func sizeOf(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []string:
		n := len(v)
		for _, s := range v {
			n += len(s)
		}
		return n
	case []any:
		n := len(v)
		for _, a := range v {
			n += sizeOf(a)
		}
		return n
	case templateValues:
		return len(v.AccessToken) + len(v.TokenType) + len(v.ExpiresAt) + len(v.ClientID) + sizeOf(v.Scopes) +
			len(v.AccessKeyID) + len(v.SecretAccessKey) + len(v.SessionToken)
	default:
		return 16
	}
}

// render executes the validated templates. Its errors have fixed reasons:
// whether a limit is passed may depend on the token, its content never shows.
func (c *compiled) render(values templateValues, secretType corev1.SecretType) (map[string][]byte, error) {
	if len(c.keys) == 0 {
		return nil, nil
	}
	if c.scopeKey != "" && len(values.Scopes) > MaxTemplateScopes {
		return nil, dataError(c.scopeKey, reasonTooManyScp)
	}
	if c.fixed+c.perScope*len(values.Scopes) > maxSteps {
		key := c.scopeKey
		if key == "" {
			key = c.keys[0]
		}
		return nil, dataError(key, "the templates are too large to range over this many scopes")
	}
	b := &budget{}
	funcs := b.funcs()
	out := make(map[string][]byte, len(c.keys))
	for _, key := range c.keys {
		data, err := c.execute(key, values, b, funcs)
		if err != nil {
			return nil, err
		}
		out[key] = data
	}
	if secretType == corev1.SecretTypeDockerConfigJson {
		// The API server's own complaint would quote the rendered text.
		var obj map[string]any
		if json.Unmarshal(out[corev1.DockerConfigJsonKey], &obj) != nil {
			return nil, dataError(corev1.DockerConfigJsonKey, reasonDockerJSON)
		}
	}
	return out, nil
}

func (c *compiled) execute(key string, values templateValues, b *budget, funcs template.FuncMap) (data []byte, err error) {
	defer func() {
		if recover() != nil {
			data, err = nil, dataError(key, reasonNoRender)
		}
	}()
	tpl, err := template.New(key).Funcs(funcs).Option("missingkey=error").AddParseTree(key, c.trees[key])
	if err != nil {
		return nil, dataError(key, reasonNoRender)
	}
	w := &cappedWriter{b: b}
	execErr := tpl.Execute(w, values)
	if b.reason != "" {
		return nil, dataError(key, b.reason)
	}
	if execErr != nil {
		// Not expected after validation; its text could hold a value.
		return nil, dataError(key, reasonNoRender)
	}
	return w.buf.Bytes(), nil
}
