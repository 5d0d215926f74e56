// Package argocd_test runs the Argo CD health checks, tokenrequest-health.lua
// and issuer-health.lua, the way Argo CD does: with gopher-lua, the object
// read as JSON into a Lua table in the global obj, and only the base, table
// and package libraries open.
package argocd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	scriptFile       = "tokenrequest-health.lua"
	issuerScriptFile = "issuer-health.lua"
	docsFile         = "../../docs/gitops.md"
	// configKey is the argocd-cm key Argo CD reads the script from.
	configKey = "resource.customizations.health.tokens.token-operator.io_TokenRequest"
)

// scriptsByKey are the argocd-cm keys and the script each carries.
var scriptsByKey = map[string]string{
	configKey: scriptFile,
	"resource.customizations.health.tokens.token-operator.io_TokenIssuer":        issuerScriptFile,
	"resource.customizations.health.tokens.token-operator.io_ClusterTokenIssuer": issuerScriptFile,
}

// health is what the script returns: Argo CD's health status and message.
type health struct {
	status, message string
}

// runHealth runs script on obj as Argo CD's controller does.
func runHealth(t *testing.T, script string, obj map[string]any) health {
	t.Helper()
	// The controller reads objects as JSON from the API server into
	// unstructured maps: integers become int64, times strings.
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}

	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase,
		lua.TabLibName:  lua.OpenTable,
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), Protect: true}, lua.LString(name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, u.Object))
	if err := l.DoString(script); err != nil {
		t.Fatalf("the script fails: %v", err)
	}
	hs, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the script returns %s, not a table", l.Get(-1).Type())
	}
	status, ok := l.GetField(hs, "status").(lua.LString)
	if !ok {
		t.Fatalf("hs.status is %s, not a string", l.GetField(hs, "status").Type())
	}
	message, ok := l.GetField(hs, "message").(lua.LString)
	if !ok {
		t.Fatalf("hs.message is %s, not a string", l.GetField(hs, "message").Type())
	}
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Fatalf("hs.status %q is not an Argo CD health status", status)
	}
	return health{string(status), string(message)}
}

// toLua converts a value of an unstructured object to Lua, as Argo CD does:
// maps and slices become tables, numbers LNumber, null nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetH(lua.LString(key), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func readScript(t *testing.T) string {
	t.Helper()
	return readScriptFile(t, scriptFile)
}

func readScriptFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// tokenRequest is a TokenRequest at generation 1 with the given status; a
// nil status leaves the field out.
func tokenRequest(generation int64, status map[string]any) map[string]any {
	obj := map[string]any{
		"apiVersion": "tokens.token-operator.io/v1alpha1",
		"kind":       "TokenRequest",
		"metadata":   map[string]any{"name": "graph-token", "namespace": "apps", "generation": generation},
		"spec": map[string]any{
			"authority":  "https://login.microsoftonline.com/contoso.onmicrosoft.com",
			"clientID":   "00001111-aaaa-2222-bbbb-3333cccc4444",
			"scopes":     []any{"https://graph.microsoft.com/.default"},
			"credential": map[string]any{"clientSecret": map[string]any{"name": "graph-app-cred"}},
		},
	}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

func cond(typ, status, reason, message string) map[string]any {
	return map[string]any{
		"type": typ, "status": status, "reason": reason, "message": message,
		"lastTransitionTime": "2026-03-01T10:00:00Z", "observedGeneration": int64(1),
	}
}

// observed is a status the operator wrote for generation 1.
func observed(extra map[string]any, conditions ...map[string]any) map[string]any {
	st := map[string]any{"observedGeneration": int64(1), "conditions": toAny(conditions)}
	for k, v := range extra {
		st[k] = v
	}
	return st
}

func toAny(conditions []map[string]any) []any {
	out := make([]any, len(conditions))
	for i, c := range conditions {
		out[i] = c
	}
	return out
}

const (
	validMessage      = "token valid until 2026-03-01T11:00:00Z, refresh at 2026-03-01T10:40:00Z"
	unavailable       = "POST https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token: HTTP 503"
	rejectedMessage   = "invalid_client: AADSTS7000215: Invalid client secret provided. Correlation ID: 9f1c"
	expiredMessage    = "the token expired at 2026-03-01T11:00:00Z: " + unavailable
	shortLifetimeText = "tokens live 1m0s, not longer than --min-remaining-lifetime (2m0s)"
)

var (
	upToDate = []map[string]any{
		cond("Reconciling", "False", "UpToDate", "the token is up to date"),
		cond("Stalled", "False", "UpToDate", "the token is up to date"),
	}
	retrying = []map[string]any{
		cond("Reconciling", "True", "TokenServiceUnavailable", unavailable),
		cond("Stalled", "False", "TokenServiceUnavailable", "see Reconciling"),
	}
	rejected = []map[string]any{
		cond("Reconciling", "False", "TokenServiceRejected", "see Stalled"),
		cond("Stalled", "True", "TokenServiceRejected", rejectedMessage),
	}
	readyIssued = cond("Ready", "True", "Issued", validMessage)
)

func with(first map[string]any, rest []map[string]any) []map[string]any {
	return append([]map[string]any{first}, rest...)
}

func TestHealth(t *testing.T) {
	script := readScript(t)
	retry := map[string]any{"lastFailureReason": "TokenServiceUnavailable", "nextRetryTime": "2026-03-01T10:41:20Z"}
	tests := []struct {
		name string
		obj  map[string]any
		want health
	}{{
		name: "a new TokenRequest without status waits for the operator",
		obj:  tokenRequest(1, nil),
		want: health{"Progressing", "Waiting for the operator to act on generation 1"},
	}, {
		name: "a new TokenRequest with the defaulted status observedGeneration 0 waits for the operator",
		obj:  tokenRequest(1, map[string]any{"observedGeneration": int64(0)}),
		want: health{"Progressing", "Waiting for the operator to act on generation 1"},
	}, {
		name: "a changed spec waits for the operator while observedGeneration is behind, whatever the old conditions say",
		obj:  tokenRequest(2, observed(nil, with(readyIssued, upToDate)...)),
		want: health{"Progressing", "Waiting for the operator to act on generation 2"},
	}, {
		name: "a first token on its way after a transient failure is progressing",
		obj: tokenRequest(1, observed(retry, with(
			cond("Ready", "False", "TokenServiceUnavailable", unavailable), retrying)...)),
		want: health{"Progressing", "TokenServiceUnavailable: " + unavailable},
	}, {
		name: "a first token waiting for its credential Secret is progressing",
		obj: tokenRequest(1, observed(nil,
			cond("Ready", "False", "CredentialNotFound", `Secret "graph-app-cred" not found`),
			cond("Reconciling", "True", "CredentialNotFound", `Secret "graph-app-cred" not found`),
			cond("Stalled", "False", "CredentialNotFound", "see Reconciling"))),
		want: health{"Progressing", `CredentialNotFound: Secret "graph-app-cred" not found`},
	}, {
		name: "a valid token in the Secret is healthy with Ready's message",
		obj:  tokenRequest(1, observed(nil, with(readyIssued, upToDate)...)),
		want: health{"Healthy", validMessage},
	}, {
		name: "a refresh retried while the token is still valid stays healthy and says it is retrying",
		obj: tokenRequest(1, observed(retry, with(
			cond("Ready", "True", "Refreshed", "token valid until 2026-03-01T11:00:00Z; getting a new one failed: "+unavailable),
			retrying)...)),
		want: health{"Healthy", "token valid until 2026-03-01T11:00:00Z; getting a new one failed: " + unavailable +
			"; retrying the refresh (TokenServiceUnavailable) at 2026-03-01T10:41:20Z"},
	}, {
		name: "a client secret the token service rejects (invalid_client) is degraded with Stalled's reason and message",
		obj: tokenRequest(1, observed(map[string]any{"lastFailureReason": "TokenServiceRejected"}, with(
			cond("Ready", "False", "TokenServiceRejected", rejectedMessage), rejected)...)),
		want: health{"Degraded", "TokenServiceRejected: " + rejectedMessage},
	}, {
		name: "a rejected refresh is degraded even while the old token is still valid",
		obj: tokenRequest(1, observed(nil, with(
			cond("Ready", "True", "Issued", "token valid until 2026-03-01T11:00:00Z; getting a new one failed: "+rejectedMessage),
			rejected)...)),
		want: health{"Degraded", "TokenServiceRejected: " + rejectedMessage},
	}, {
		name: "an expired token with no retry on its way is degraded",
		obj: tokenRequest(1, observed(nil, with(
			cond("Ready", "False", "Expired", expiredMessage), upToDate)...)),
		want: health{"Degraded", "Expired: " + expiredMessage},
	}, {
		name: "an expired token whose retry is on its way is progressing",
		obj: tokenRequest(1, observed(retry, with(
			cond("Ready", "False", "Expired", expiredMessage), retrying)...)),
		want: health{"Progressing", "TokenServiceUnavailable: " + unavailable},
	}, {
		name: "a short-lifetime warning alone, without Ready, is progressing",
		obj: tokenRequest(1, observed(nil,
			cond("Warning", "True", "ShortLifetime", shortLifetimeText))),
		want: health{"Progressing", "Waiting for the first token"},
	}, {
		name: "a short-lifetime warning leaves a valid token healthy",
		obj: tokenRequest(1, observed(nil, append(with(readyIssued, upToDate),
			cond("Warning", "True", "ShortLifetime", shortLifetimeText))...)),
		want: health{"Healthy", validMessage},
	}, {
		name: "a status without conditions is progressing",
		obj:  tokenRequest(1, map[string]any{"observedGeneration": int64(1)}),
		want: health{"Progressing", "Waiting for the first token"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runHealth(t, script, tt.obj); got != tt.want {
				t.Errorf("got  %s %q\nwant %s %q", got.status, got.message, tt.want.status, tt.want.message)
			}
		})
	}
}

// TestDocsCarryTheScript: the argocd-cm example in docs/gitops.md holds each
// script byte for byte under its keys.
func TestDocsCarryTheScript(t *testing.T) {
	data, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, block := range yamlBlocks(string(data)) {
		var cm struct {
			Kind     string `json:"kind"`
			Metadata struct{ Name string }
			Data     map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(block), &cm); err != nil || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
			continue
		}
		found = true
		for key, file := range scriptsByKey {
			got, ok := cm.Data[key]
			if !ok {
				t.Errorf("the argocd-cm example has no key %s", key)
				continue
			}
			if got != readScriptFile(t, file) {
				t.Errorf("the script under %s in the argocd-cm example of %s differs from %s: copy the file into it", key, docsFile, file)
			}
		}
	}
	if !found {
		t.Errorf("%s has no argocd-cm example", docsFile)
	}
}

// yamlBlocks returns the ```yaml blocks of a Markdown text.
func yamlBlocks(markdown string) []string {
	var blocks []string
	var b strings.Builder
	in := false
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for sc.Scan() {
		line := sc.Text()
		switch trimmed := strings.TrimSpace(line); {
		case !in && trimmed == "```yaml":
			in = true
			b.Reset()
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, b.String())
		case in:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return blocks
}
