package secretdata

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

func awsInput(tpl *v1.SecretTemplate) Input {
	in := input(tpl)
	in.Token.AccessToken, in.Token.TokenType, in.Token.Scopes = "", "aws-credentials", nil
	in.Token.AWS = &AWSKeys{AccessKeyID: "ASIAEXAMPLEKEY123456", SecretAccessKey: "wJalr/secret+key", SessionToken: "FwoGZXIvYXdzE//session=="}
	return in
}

// The Secret of AWS credentials holds the forms the brief fixes, and
// nothing of an OAuth2 token.
func TestAWSCredentialsAreWrittenInEveryFormSDKsRead(t *testing.T) {
	r, err := Render(awsInput(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := r.Data
	want := "[default]\naws_access_key_id = ASIAEXAMPLEKEY123456\naws_secret_access_key = wJalr/secret+key\naws_session_token = FwoGZXIvYXdzE//session==\n"
	if got := string(d[KeyAWSCredentials]); got != want {
		t.Errorf("credentials:\n%s", got)
	}
	var p map[string]any
	if err := json.Unmarshal(d[KeyAWSCredentialProcess], &p); err != nil {
		t.Fatal(err)
	}
	if p["Version"] != 1.0 || p["AccessKeyId"] != "ASIAEXAMPLEKEY123456" || p["SecretAccessKey"] != "wJalr/secret+key" ||
		p["SessionToken"] != "FwoGZXIvYXdzE//session==" || p["Expiration"] != "2026-11-23T13:00:00Z" || len(p) != 5 {
		t.Errorf("credential_process.json: %s", d[KeyAWSCredentialProcess])
	}
	if string(d[KeyAWSAccessKeyID]) != "ASIAEXAMPLEKEY123456" || string(d[KeyAWSSecretAccessKey]) != "wJalr/secret+key" ||
		string(d[KeyAWSSessionToken]) != "FwoGZXIvYXdzE//session==" || string(d[v1.KeyExpiresAt]) != "2026-11-23T13:00:00Z" || len(d) != 6 {
		t.Errorf("data keys: %q", d)
	}
	s := &corev1.Secret{}
	Apply(s, r)
	if got := ReadAWS(s.Data); got == nil || *got != *awsInput(nil).Token.AWS {
		t.Errorf("read back %+v", got)
	}
	if st := Read(s); !st.Intact || !st.HasToken || !st.ExpiresAt.Equal(awsInput(nil).Token.ExpiresAt.Truncate(time.Second)) {
		t.Errorf("state %+v", st)
	}
	if ReadAWS(map[string][]byte{KeyAWSAccessKeyID: []byte("x")}) != nil {
		t.Error("incomplete credentials read back")
	}
}

func TestTemplatesSeeAWSCredentials(t *testing.T) {
	tpl := &v1.SecretTemplate{Data: map[string]string{"env": "KEY={{ .AccessKeyID }} TOKEN={{ .SessionToken | b64enc }}{{ .AccessToken }}"}}
	r, err := Render(awsInput(tpl))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Data["env"]); got != "KEY=ASIAEXAMPLEKEY123456 TOKEN=RndvR1pYSXZZWGR6RS8vc2Vzc2lvbj09" {
		t.Errorf("env = %q", got)
	}
	if _, ok := r.Data[KeyAWSCredentials]; !ok {
		t.Error("a template dropped the default keys")
	}
	r, err = Render(input(tpl))
	if err != nil || string(r.Data["env"]) != "KEY= TOKEN=opaque-token-value" {
		t.Errorf("an OAuth2 token: %q, %v", r.Data["env"], err)
	}
	if err := ValidateTemplate(&v1.SecretTemplate{Data: map[string]string{"x": "{{ .SecretKey }}"}}); err == nil || !strings.Contains(err.Error(), ".SecretAccessKey") {
		t.Errorf("an unknown field: %v", err)
	}
}

func TestAWSDataStaysWithinItsBound(t *testing.T) {
	const max = 4096
	in := awsInput(nil)
	in.Token.AWS = &AWSKeys{AccessKeyID: strings.Repeat("A", 20), SecretAccessKey: strings.Repeat("/", 40), SessionToken: strings.Repeat("+", max-60)}
	r, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, v := range r.Data {
		n += len(k) + len(v)
	}
	if n > MaxTokenDataBytes(max) {
		t.Errorf("%d bytes of data for %d bytes of credentials, more than MaxTokenDataBytes %d", n, max, MaxTokenDataBytes(max))
	}
}
