package consumer_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/testing/awssts"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// The AWS consumer's own choices: the SDK modules the operator uses, on
// the oldest go line they allow.
const (
	awsConsumerGo         = "1.24.0"
	awsConfigVersion      = "v1.33.19"
	awsSTSVersion         = "v1.53.0"
	awscredentialsModule  = "github.com/token-operator/token-operator/pkg/awscredentials"
	awsRoleARN            = "arn:aws:iam::111122223333:role/workloads/reader"
	awsAssumedRolePrefix  = "arn:aws:sts::111122223333:assumed-role/reader/"
	awsWebIdentityIssuer  = "https://oidc.cluster.example"
	awsWebIdentityKeyID   = "sa-key"
	awsWebIdentitySubject = "system:serviceaccount:team-a:workload"
)

// Modules an AWS consumer must not get from pkg/awscredentials: the
// OAuth2 library (pkg/tokenfile's), besides the operator's own.
var awsConsumerNever = append([]string{"golang.org/x/oauth2", tokenfileModule}, operatorOnly...)

const awsConsumerMain = `package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/token-operator/token-operator/pkg/awscredentials"
)

// For each line on stdin, asks STS who signed the request, with the
// credentials of the Secret mounted at os.Args[1]. The expiry window is as
// long as the credentials' 15 minutes, so the SDK's cache asks the provider
// on every call and each swap shows at once; a program would use minutes.
func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithCredentialsProvider(awscredentials.New(os.Args[1])),
		config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 15 * time.Minute }),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		panic(err)
	}
	client := sts.NewFromConfig(cfg)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var api smithy.APIError
		switch {
		case err == nil:
			fmt.Println("ok", aws.ToString(out.Arn))
		case errors.Is(err, awscredentials.ErrExpired):
			fmt.Println("expired")
		case errors.As(err, &api):
			fmt.Println("refused", api.ErrorCode())
		default:
			fmt.Println("error", err)
		}
	}
}
`

// TestAWSConsumerSignsWithTheMountedSecret: a module on go 1.24 with the
// AWS SDK's config and STS client, importing only pkg/awscredentials,
// keeps its go line, gets neither OAuth2 nor the operator's dependencies,
// and, with the SDK's default configuration and the provider over a Secret
// in kubelet's layout, SigV4-signs requests that a faithful STS verifies
// with the secret key it issued, following swaps of ..data while it runs.
// It needs the Go module proxy (or a module cache holding the SDK).
func TestAWSConsumerSignsWithTheMountedSecret(t *testing.T) {
	gobin, moduleDir, dir := consumerModule(t, "awscredentials")
	write(t, filepath.Join(dir, "go.mod"), fmt.Sprintf(
		"module example.com/awsconsumer\n\ngo %s\n\nrequire (\n\tgithub.com/aws/aws-sdk-go-v2/config %s\n\tgithub.com/aws/aws-sdk-go-v2/service/sts %s\n)\n\nreplace %s => %s\n",
		awsConsumerGo, awsConfigVersion, awsSTSVersion, awscredentialsModule, moduleDir))
	write(t, filepath.Join(dir, "main.go"), awsConsumerMain)
	goCmd := goRunner(t, gobin, dir)
	goCmd("mod", "tidy")
	checkAWSFootprint(t, goCmd)
	bin := filepath.Join(t.TempDir(), "awsconsumer")
	goCmd("build", "-o", bin, ".")

	srv := awsSTS(t)
	first := assumeRole(t, srv, "first")
	second := assumeRole(t, srv, "second")
	vol := &kubeletVolume{t: t, dir: t.TempDir()}
	vol.publish(awsSecret(first))
	c := startAWSConsumer(t, bin, vol.dir, srv)

	if got := c.ask(); got != "ok "+awsAssumedRolePrefix+"first" {
		t.Fatalf("with the first credentials the consumer printed %q", got)
	}
	checkLastCall(t, srv, "")

	vol.publish(awsSecret(second))
	if got := c.ask(); got != "ok "+awsAssumedRolePrefix+"second" {
		t.Fatalf("after ..data moved to the second credentials the consumer printed %q", got)
	}
	checkLastCall(t, srv, "")

	// The server checks the signature with the secret key it issued: the
	// first key ID with the second's secret key is refused. (The signer
	// caches its derived key by key ID, so the key ID must change too.)
	wrong := first
	wrong.SecretAccessKey = second.SecretAccessKey
	vol.publish(awsSecret(wrong))
	if got := c.ask(); got != "refused SignatureDoesNotMatch" {
		t.Fatalf("with a wrong secret key the consumer printed %q", got)
	}
	checkLastCall(t, srv, "SignatureDoesNotMatch")

	// Expired credentials are never sent.
	expired := second
	expired.Expiration = time.Now().Add(-time.Minute)
	vol.publish(awsSecret(expired))
	calls := len(srv.Calls())
	if got := c.ask(); got != "expired" {
		t.Fatalf("with expired credentials the consumer printed %q", got)
	}
	if n := len(srv.Calls()); n != calls {
		t.Errorf("STS got %d requests signed with expired credentials", n-calls)
	}

	vol.publish(awsSecret(second))
	if got := c.ask(); got != "ok "+awsAssumedRolePrefix+"second" {
		t.Fatalf("back on the second credentials the consumer printed %q", got)
	}
	checkLastCall(t, srv, "")
}

func checkAWSFootprint(t *testing.T, goCmd func(...string) string) {
	t.Helper()
	var mod struct {
		Go        string
		Toolchain string
		Require   []struct{ Path, Version string }
	}
	if err := json.Unmarshal([]byte(goCmd("mod", "edit", "-json")), &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Go != awsConsumerGo || mod.Toolchain != "" {
		t.Errorf("go.mod says go %s, toolchain %q after go mod tidy; want go %s and no toolchain line", mod.Go, mod.Toolchain, awsConsumerGo)
	}
	required := map[string]string{}
	for _, r := range mod.Require {
		required[r.Path] = r.Version
	}
	if _, ok := required[awscredentialsModule]; !ok {
		t.Errorf("go.mod does not require %s: %v", awscredentialsModule, required)
	}
	for path, want := range map[string]string{"github.com/aws/aws-sdk-go-v2/config": awsConfigVersion, "github.com/aws/aws-sdk-go-v2/service/sts": awsSTSVersion} {
		if required[path] != want {
			t.Errorf("go.mod requires %s %s after go mod tidy, want %s", path, required[path], want)
		}
	}
	for _, line := range strings.Split(goCmd("list", "-m", "all"), "\n") {
		for _, bad := range awsConsumerNever {
			if strings.HasPrefix(line+" ", bad) {
				t.Errorf("the consumer's build list holds %q", line)
			}
		}
	}
}

// awsSTS is a fake STS trusting one issuer's tokens for the role.
func awsSTS(t *testing.T) *awssts.Server {
	t.Helper()
	srv := awssts.New()
	t.Cleanup(srv.Close)
	key := testcert.RSA(t, 2048)
	srv.AddProvider(awssts.Provider{Issuer: awsWebIdentityIssuer, Keys: awssts.StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: key.Public(), KeyID: awsWebIdentityKeyID, Algorithm: "RS256", Use: "sig"}}})})
	srv.AddRole(awssts.Role{ARN: awsRoleARN, Issuer: awsWebIdentityIssuer, Audiences: []string{"sts.amazonaws.com"},
		Subjects: []string{awsWebIdentitySubject}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", awsWebIdentityKeyID))
	if err != nil {
		t.Fatal(err)
	}
	webIdentitySigner = signer
	return srv
}

// webIdentitySigner signs the service account tokens awsSTS trusts.
var webIdentitySigner jose.Signer

// assumeRole gets credentials for a 15-minute session the way the
// operator does: the SDK's STS client with a service account token.
func assumeRole(t *testing.T, srv *awssts.Server, session string) awssts.Credentials {
	t.Helper()
	now := time.Now()
	token, err := jwt.Signed(webIdentitySigner).Claims(jwt.Claims{Issuer: awsWebIdentityIssuer, Subject: awsWebIdentitySubject,
		Audience: jwt.Audience{"sts.amazonaws.com"}, IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	client := sts.NewFromConfig(aws.Config{Region: awssts.DefaultRegion, Credentials: aws.AnonymousCredentials{},
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}}},
		func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	out, err := client.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(awsRoleARN), RoleSessionName: aws.String(session), WebIdentityToken: aws.String(token),
		DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	return awssts.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), Expiration: aws.ToTime(c.Expiration)}
}

// awsSecret is the data of an AWS TokenRequest's Secret, rendered by the
// operator's own code.
func awsSecret(c awssts.Credentials) map[string]string {
	r, err := secretdata.Render(secretdata.Input{TokenRequestName: "aws", Token: secretdata.Token{
		TokenType: "aws-credentials", IssuedAt: time.Now(), ExpiresAt: c.Expiration,
		AWS: &secretdata.AWSKeys{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}}})
	if err != nil {
		panic(err)
	}
	data := map[string]string{}
	for k, v := range r.Data {
		data[k] = string(v)
	}
	return data
}

// checkLastCall checks that STS's last request was a signed
// GetCallerIdentity answered with code ("" for success).
func checkLastCall(t *testing.T, srv *awssts.Server, code string) {
	t.Helper()
	calls := srv.Calls()
	last := calls[len(calls)-1]
	if last.Action != "GetCallerIdentity" || !last.Signed || last.ErrorCode != code {
		t.Fatalf("STS's last request: %+v; want a signed GetCallerIdentity answered %q", last, code)
	}
}

// kubeletVolume writes a Secret volume the way kubelet's atomic writer
// does: a new hidden version folder, a ..data_tmp link renamed over ..data,
// visible links into ..data, and the previous version removed.
type kubeletVolume struct {
	t       *testing.T
	dir     string
	current string
}

func (v *kubeletVolume) publish(files map[string]string) {
	v.t.Helper()
	gen, err := os.MkdirTemp(v.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		v.t.Fatal(err)
	}
	for name, content := range files {
		write(v.t, filepath.Join(gen, name), content)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	for name := range files {
		if _, err := os.Lstat(filepath.Join(v.dir, name)); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
				v.t.Fatal(err)
			}
		}
	}
	if v.current != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.current)); err != nil {
			v.t.Fatal(err)
		}
	}
	v.current = filepath.Base(gen)
}

// awsConsumer is the running consumer program.
type awsConsumer struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
}

func startAWSConsumer(t *testing.T, bin, secretDir string, srv *awssts.Server) *awsConsumer {
	t.Helper()
	home := t.TempDir()
	ca := filepath.Join(home, "ca.pem")
	write(t, ca, string(srv.CAPEM()))
	cmd := exec.Command(bin, secretDir)
	// Only what the test sets: no AWS settings or files of the machine.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home, "AWS_REGION="+awssts.DefaultRegion, "AWS_ENDPOINT_URL_STS="+srv.URL, "AWS_CA_BUNDLE="+ca,
		"AWS_CONFIG_FILE="+filepath.Join(home, "absent-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "absent-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the consumer: %v", err)
		}
	})
	return &awsConsumer{t: t, in: in, out: bufio.NewReader(out)}
}

// ask makes the consumer call STS once and returns what it printed.
func (c *awsConsumer) ask() string {
	c.t.Helper()
	if _, err := io.WriteString(c.in, "\n"); err != nil {
		c.t.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.t.Fatalf("the consumer printed %q: %v", line, err)
	}
	return strings.TrimSuffix(line, "\n")
}
