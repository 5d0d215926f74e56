package argocd_test

import "testing"

// issuer is an issuer of kind at generation 1 with the given status; a nil
// status leaves the field out.
func issuer(kind string, generation int64, status map[string]any) map[string]any {
	meta := map[string]any{"name": "corp-entra", "generation": generation}
	if kind == "TokenIssuer" {
		meta["namespace"] = "apps"
	}
	obj := map[string]any{
		"apiVersion": "tokens.token-operator.io/v1alpha1",
		"kind":       kind,
		"metadata":   meta,
		"spec": map[string]any{
			"authority":  "https://login.microsoftonline.com/contoso.onmicrosoft.com",
			"clientID":   "00001111-aaaa-2222-bbbb-3333cccc4444",
			"credential": map[string]any{"clientSecret": map[string]any{"name": "graph-app-cred"}},
		},
	}
	if status != nil {
		obj["status"] = status
	}
	return obj
}

const (
	checkedMessage     = "the configuration and the credential can be used"
	notAllowedMessage  = `the credential's allowed-issuers annotation does not name login.microsoftonline.com`
	credentialNotFound = `Secret "graph-app-cred" not found`
)

// issuerChecked is the status the operator writes for a usable issuer.
func issuerChecked(extra map[string]any) map[string]any {
	return observed(extra,
		cond("Ready", "True", "Checked", checkedMessage),
		cond("Stalled", "False", "UpToDate", "the issuer can be used"),
		cond("Reconciling", "False", "UpToDate", "checked"))
}

// issuerNotReady is the status the operator writes for an unusable issuer.
func issuerNotReady(reason, message string) map[string]any {
	return observed(nil,
		cond("Ready", "False", reason, message),
		cond("Stalled", "True", reason, message),
		cond("Reconciling", "False", "UpToDate", "checked"))
}

func TestIssuerHealth(t *testing.T) {
	script := readScriptFile(t, issuerScriptFile)
	for _, kind := range []string{"TokenIssuer", "ClusterTokenIssuer"} {
		tests := []struct {
			name string
			obj  map[string]any
			want health
		}{{
			name: "a new issuer without status waits for the operator",
			obj:  issuer(kind, 1, nil),
			want: health{"Progressing", "Waiting for the operator to check generation 1"},
		}, {
			name: "a new issuer with the defaulted status observedGeneration 0 waits for the operator",
			obj:  issuer(kind, 1, map[string]any{"observedGeneration": int64(0)}),
			want: health{"Progressing", "Waiting for the operator to check generation 1"},
		}, {
			name: "a changed spec waits while observedGeneration is behind, whatever the old Ready says",
			obj:  issuer(kind, 2, issuerChecked(nil)),
			want: health{"Progressing", "Waiting for the operator to check generation 2"},
		}, {
			name: "a checked issuer is healthy with Ready's message",
			obj:  issuer(kind, 1, issuerChecked(nil)),
			want: health{"Healthy", checkedMessage},
		}, {
			name: "a checked issuer in use says how many TokenRequests name it",
			obj:  issuer(kind, 1, issuerChecked(map[string]any{"tokenRequests": int64(3)})),
			want: health{"Healthy", checkedMessage + " (3 TokenRequests)"},
		}, {
			name: "a credential the annotation does not allow is degraded with the reason",
			obj:  issuer(kind, 1, issuerNotReady("CredentialNotAllowed", notAllowedMessage)),
			want: health{"Degraded", "CredentialNotAllowed: " + notAllowedMessage},
		}, {
			name: "a credential that does not parse is degraded",
			obj:  issuer(kind, 1, issuerNotReady("InvalidCredential", "")),
			want: health{"Degraded", "InvalidCredential"},
		}, {
			name: "a credential Secret not created yet (a later sync wave) is progressing",
			obj:  issuer(kind, 1, issuerNotReady("CredentialNotFound", credentialNotFound)),
			want: health{"Progressing", "CredentialNotFound: " + credentialNotFound},
		}, {
			name: "a status without conditions is progressing",
			obj:  issuer(kind, 1, map[string]any{"observedGeneration": int64(1)}),
			want: health{"Progressing", "Waiting for the first check"},
		}}
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				if got := runHealth(t, script, tt.obj); got != tt.want {
					t.Errorf("got  %s %q\nwant %s %q", got.status, got.message, tt.want.status, tt.want.message)
				}
			})
		}
	}
}
