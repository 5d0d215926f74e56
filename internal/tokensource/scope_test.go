package tokensource

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/token-operator/token-operator/internal/credential"
)

// excludedScopeCharacters are every byte RFC 6749's scope-token leaves out,
// plus the Unicode white space some token services also split on.
func excludedScopeCharacters() map[string]string {
	ex := map[string]string{}
	for c := 0; c <= 0x20; c++ {
		ex[fmt.Sprintf("byte 0x%02X", c)] = string(rune(c))
	}
	ex["DEL 0x7F"] = "\x7f"
	ex["double quote"] = `"`
	ex["backslash"] = `\`
	ex["no-break space U+00A0"] = "\u00a0"
	ex["next line U+0085"] = "\u0085"
	ex["line separator U+2028"] = "\u2028"
	ex["ideographic space U+3000"] = "\u3000"
	ex["zero width space U+200B"] = "\u200b"
	ex["letter e with acute U+00E9"] = "é"
	ex["emoji"] = "🔑"
	ex["a lone byte 0x80"] = "\x80"
	ex["a lone byte 0xFF"] = "\xff"
	return ex
}

func TestScopeTokenIsRFC6749Grammar(t *testing.T) {
	for name, c := range excludedScopeCharacters() {
		for _, s := range []string{c, "orders.read" + c + "admin", c + "orders.read", "orders.read" + c} {
			if ScopeToken(s) {
				t.Errorf("%s: ScopeToken(%q) = true", name, s)
			}
		}
	}
	if ScopeToken("") {
		t.Error(`ScopeToken("") = true`)
	}
	// Every byte the grammar allows is allowed, alone and in a run.
	var all strings.Builder
	for c := byte(0x21); c <= 0x7e; c++ {
		if c == '"' || c == '\\' {
			continue
		}
		all.WriteByte(c)
		if !ScopeToken(string(c)) {
			t.Errorf("ScopeToken(%q) = false", string(c))
		}
	}
	if !ScopeToken(all.String()) {
		t.Errorf("ScopeToken(%q) = false", all.String())
	}
	for _, s := range []string{
		"api://11111111-2222-3333-4444-555555555555/.default",
		"https://management.azure.com//.default",
		"https://management.core.windows.net//.default",
		"https://graph.microsoft.com/.default",
		"User.Read", "orders.*", "*.read", "api://orders/*", "openid", "read:org",
	} {
		if !ScopeToken(s) {
			t.Errorf("ScopeToken(%q) = false", s)
		}
	}
}

func TestValidateRefusesScopesOutsideTheGrammar(t *testing.T) {
	secret := &credential.ClientSecret{Secret: "s"}
	generic := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Credential: secret}
	entra := Request{Authority: "https://login.microsoftonline.com/contoso", ClientID: "c", Credential: secret}
	for name, c := range excludedScopeCharacters() {
		for _, tc := range []struct {
			kind string
			req  Request
			bad  string
		}{
			{"generic", generic, "orders.read" + c + "admin"},
			{"Entra", entra, "api://orders" + c + "/.default"},
		} {
			t.Run(tc.kind+" "+name, func(t *testing.T) {
				req := tc.req
				req.Scopes = []string{"orders.read", tc.bad}
				err := req.Validate()
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != "scopes" || !strings.Contains(ce.Message, ScopeTokenRule) || !strings.Contains(ce.Message, "scope 2") {
					t.Fatalf("Validate() = %v; want a scopes ConfigError naming the rule and the second scope", err)
				}
				if !utf8.ValidString(ce.Message) || strings.ContainsFunc(ce.Message, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
					t.Errorf("message is not printable ASCII: %q", ce.Message)
				}
			})
		}
	}
	t.Run("the message quotes at most a short part of a long scope", func(t *testing.T) {
		req := generic
		req.Scopes = []string{strings.Repeat("a", 1000) + " admin"}
		err := req.Validate()
		if err == nil || len(err.Error()) > 300 {
			t.Fatalf("Validate() = %v", err)
		}
	})
}

func TestValidateAcceptsEntraAndCommonScopes(t *testing.T) {
	secret := &credential.ClientSecret{Secret: "s"}
	for _, s := range []string{
		"api://11111111-2222-3333-4444-555555555555/.default",
		"https://management.azure.com//.default",
		"https://graph.microsoft.com/.default",
		"11111111-2222-3333-4444-555555555555/.default",
	} {
		r := Request{Authority: "https://login.microsoftonline.com/contoso", ClientID: "c", Scopes: []string{s}, Credential: secret}
		if err := r.Validate(); err != nil {
			t.Errorf("Entra scope %q refused: %v", s, err)
		}
	}
	r := Request{TokenURL: "https://idp.example.com/token", ClientID: "c", Credential: secret,
		Scopes: []string{"User.Read", "orders.read", "read:org", "https://api.example.com/orders.write", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}}
	if err := r.Validate(); err != nil {
		t.Errorf("generic scopes refused: %v", err)
	}
}

func TestGrantedScopesKeepOnlyBoundedScopeTokens(t *testing.T) {
	requested := []string{"orders.read"}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	for _, tc := range []struct {
		name    string
		granted []string
		want    []string
	}{
		{"valid scopes are kept", []string{"orders.read", "orders.write"}, []string{"orders.read", "orders.write"}},
		{"smuggled characters are dropped", []string{"orders.read\u00a0admin", "ok", "a\x00b", ""}, []string{"ok"}},
		{"nothing valid falls back to the request", []string{"\u3000", strings.Repeat("a", 2000)}, requested},
		{"at most 64 are kept", many, many[:64]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := grantedScopes(tc.granted, requested)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("grantedScopes = %q, want %q", got, tc.want)
			}
		})
	}
}
