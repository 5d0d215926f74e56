package awscredentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// secretKeys are the keys of token-operator's AWS Secret besides
// credential_process.json: a volume holds them all, as a pod sees it.
var secretKeys = []string{keyCredentialProcess, "credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "expires_at"}

// volume builds a Secret volume the way kubelet's atomic writer does.
type volume struct {
	t       testing.TB
	dir     string
	current string // the version folder ..data points to
}

func newVolume(t *testing.T) *volume {
	return &volume{t: t, dir: t.TempDir()}
}

// publish writes files as a new version folder, renames a ..data_tmp link to
// it over ..data, updates the visible links and removes the old version.
func (v *volume) publish(files map[string]string) {
	v.t.Helper()
	gen, err := os.MkdirTemp(v.dir, t0.Format("..2006_01_02_15_04_05."))
	must(v.t, err)
	for name, content := range files {
		must(v.t, os.WriteFile(filepath.Join(gen, name), []byte(content), 0o644))
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	must(v.t, os.Symlink(filepath.Base(gen), tmp))
	must(v.t, os.Rename(tmp, filepath.Join(v.dir, dataLink)))
	for _, name := range secretKeys {
		link := filepath.Join(v.dir, name)
		_, has := files[name]
		_, err := os.Lstat(link)
		switch {
		case has && errors.Is(err, fs.ErrNotExist):
			must(v.t, os.Symlink(filepath.Join(dataLink, name), link))
		case !has && err == nil:
			must(v.t, os.Remove(link))
		}
	}
	if v.current != "" {
		must(v.t, os.RemoveAll(filepath.Join(v.dir, v.current)))
	}
	v.current = filepath.Base(gen)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// secretFiles are the files of an AWS Secret as token-operator writes them.
func secretFiles(id, secret, session string, expires time.Time) map[string]string {
	exp := expires.UTC().Format(time.RFC3339)
	cp, err := json.Marshal(map[string]any{"Version": 1, "AccessKeyId": id, "SecretAccessKey": secret, "SessionToken": session, "Expiration": exp})
	if err != nil {
		panic(err)
	}
	return map[string]string{
		keyCredentialProcess: string(cp),
		"credentials": fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n",
			id, secret, session),
		"AWS_ACCESS_KEY_ID":     id,
		"AWS_SECRET_ACCESS_KEY": secret,
		"AWS_SESSION_TOKEN":     session,
		"expires_at":            exp,
	}
}

func newAt(dir string, now time.Time) *Provider {
	p := New(dir)
	p.now = func() time.Time { return now }
	return p
}

func mustRetrieve(t *testing.T, p aws.CredentialsProvider) aws.Credentials {
	t.Helper()
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return c
}

func TestReadsKubeletLayout(t *testing.T) {
	v := newVolume(t)
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", t0.Add(time.Hour)))
	c := mustRetrieve(t, newAt(v.dir, t0))
	want := aws.Credentials{AccessKeyID: "ASIAA", SecretAccessKey: "secret-a", SessionToken: "session-a",
		Source: ProviderName, CanExpire: true, Expires: t0.Add(time.Hour)}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if c.Expires.Location() != time.UTC {
		t.Errorf("Expires in %v, want UTC", c.Expires.Location())
	}
}

func TestFollowsSwaps(t *testing.T) {
	v := newVolume(t)
	p := newAt(v.dir, t0)
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", t0.Add(time.Hour)))
	mustRetrieve(t, p)
	v.publish(secretFiles("ASIAB", "secret-b", "session-b", t0.Add(2*time.Hour)))
	c := mustRetrieve(t, p)
	if c.AccessKeyID != "ASIAB" || c.SecretAccessKey != "secret-b" || c.SessionToken != "session-b" || !c.Expires.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after the swap got %+v", c)
	}
}

func TestCachedUntilDataChanges(t *testing.T) {
	v := newVolume(t)
	p := newAt(v.dir, t0)
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", t0.Add(time.Hour)))
	mustRetrieve(t, p)
	// Kubelet never edits a version in place; doing it shows whether
	// Retrieve read the file again.
	must(t, os.WriteFile(filepath.Join(v.dir, v.current, keyCredentialProcess), []byte("edited"), 0o644))
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIAA" {
		t.Fatalf("read again with ..data unchanged: %q", c.AccessKeyID)
	}
	v.publish(secretFiles("ASIAB", "secret-b", "session-b", t0.Add(time.Hour)))
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIAB" {
		t.Fatalf("after the swap got %q", c.AccessKeyID)
	}
}

func TestVersionRemovedWhileReading(t *testing.T) {
	v := newVolume(t)
	v.publish(secretFiles("ASIAOLD", "secret-old", "session-old", t0.Add(time.Hour)))
	p := newAt(v.dir, t0)
	swapped := false
	p.afterResolve = func() {
		if !swapped {
			swapped = true
			v.publish(secretFiles("ASIANEW", "secret-new", "session-new", t0.Add(2*time.Hour)))
		}
	}
	c := mustRetrieve(t, p)
	if c.AccessKeyID != "ASIANEW" || c.SecretAccessKey != "secret-new" || !c.Expires.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("got %+v, want the new version", c)
	}
}

func TestVersionsKeepVanishing(t *testing.T) {
	v := newVolume(t)
	v.publish(secretFiles("ASIA0", "secret", "session", t0.Add(time.Hour)))
	p := newAt(v.dir, t0)
	calls := 0
	p.afterResolve = func() {
		calls++
		v.publish(secretFiles("ASIA"+strconv.Itoa(calls), "secret", "session", t0.Add(time.Hour)))
	}
	_, err := p.Retrieve(context.Background())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if calls != maxAttempts {
		t.Errorf("%d attempts, want %d", calls, maxAttempts)
	}
}

// TestConcurrentSwaps swaps versions while readers call Retrieve. Each
// version's values name its number and expiry, so credentials mixing two
// versions are caught. A call that starts after version g is published must
// return version g or later. Before each swap the writer waits until every
// reader has finished a call started after the swap before last: reads
// overlap swaps, yet a call never spans more than two swaps, fewer than its
// attempts.
func TestConcurrentSwaps(t *testing.T) {
	const readers, versions = 8, 200
	v := newVolume(t)
	v.publish(numbered(1))
	p := newAt(v.dir, t0)
	var published atomic.Int64
	published.Store(1)
	var stop atomic.Bool
	seen := make([]atomic.Int64, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := published.Load()
				if err := checkNumbered(p, start); err != nil {
					t.Error(err)
					stop.Store(true)
				}
				seen[i].Store(start)
				runtime.Gosched() // let the writer in: readers outnumber the cores
			}
		}()
	}
	for g := int64(2); g <= versions && !stop.Load(); g++ {
		v.publish(numbered(g))
		published.Store(g)
		for i := range seen {
			for seen[i].Load() < g-1 && !stop.Load() {
				runtime.Gosched()
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

// numbered is version g: each value carries g and its expiry.
func numbered(g int64) map[string]string {
	expires := t0.Add(time.Duration(g) * time.Minute)
	tag := fmt.Sprintf("%d-%d", g, expires.Unix())
	return secretFiles("ASIA-"+tag, "secret-"+tag, "session-"+tag, expires)
}

func checkNumbered(p *Provider, atLeast int64) error {
	c, err := p.Retrieve(context.Background())
	if err != nil {
		return err
	}
	var g, unix int64
	if _, err := fmt.Sscanf(c.AccessKeyID, "ASIA-%d-%d", &g, &unix); err != nil {
		return fmt.Errorf("unexpected access key ID %q", c.AccessKeyID)
	}
	tag := fmt.Sprintf("%d-%d", g, unix)
	if unix != c.Expires.Unix() || c.SecretAccessKey != "secret-"+tag || c.SessionToken != "session-"+tag {
		return fmt.Errorf("torn read: %q %q %q expiring %v", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expires)
	}
	if g < atLeast {
		return fmt.Errorf("stale read: version %d after version %d was published", g, atLeast)
	}
	return nil
}

func TestPlainFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, keyCredentialProcess)
	write := func(id string) {
		t.Helper()
		must(t, os.WriteFile(path, []byte(secretFiles(id, "secret", "session", t0.Add(time.Hour))[keyCredentialProcess]), 0o600))
	}
	write("ASIAA")
	p := newAt(dir, t0)
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIAA" {
		t.Fatalf("got %q", c.AccessKeyID)
	}

	write("ASIABB")
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIABB" {
		t.Fatalf("after a size change got %q", c.AccessKeyID)
	}

	// Same size: only the modification time tells.
	write("ASIACC")
	must(t, os.Chtimes(path, t0, t0))
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIACC" {
		t.Fatalf("after a time change got %q", c.AccessKeyID)
	}

	// Same size and time: the cache holds.
	write("ASIADD")
	must(t, os.Chtimes(path, t0, t0))
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIACC" {
		t.Fatalf("read again with size and time unchanged: %q", c.AccessKeyID)
	}
}

func TestPlainFileChangedWhileReading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, keyCredentialProcess)
	must(t, os.WriteFile(path, []byte(secretFiles("ASIAA", "secret", "session", t0.Add(time.Hour))[keyCredentialProcess]), 0o600))
	p := newAt(dir, t0)
	rewritten := false
	p.afterResolve = func() {
		if !rewritten {
			rewritten = true
			must(t, os.WriteFile(path, []byte(secretFiles("ASIANEW", "secret", "session", t0.Add(time.Hour))[keyCredentialProcess]), 0o600))
		}
	}
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIANEW" {
		t.Fatalf("got %q, want the rewritten credentials", c.AccessKeyID)
	}
}

// TestPlainFileReadHalfWritten: a file rewritten in place is read while
// half written, then again when complete; Retrieve returns the complete one
// rather than the parse error.
func TestPlainFileReadHalfWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, keyCredentialProcess)
	full := secretFiles("ASIANEW", "secret", "session", t0.Add(time.Hour))[keyCredentialProcess]
	must(t, os.WriteFile(path, []byte(secretFiles("ASIAA", "secret", "session", t0.Add(time.Hour))[keyCredentialProcess]), 0o600))
	p := newAt(dir, t0)
	writes := []string{full[:len(full)/2], full}
	p.afterResolve = func() {
		if len(writes) > 0 {
			must(t, os.WriteFile(path, []byte(writes[0]), 0o600))
			writes = writes[1:]
		}
	}
	if c := mustRetrieve(t, p); c.AccessKeyID != "ASIANEW" {
		t.Fatalf("got %q, want the completed credentials", c.AccessKeyID)
	}
}

func TestExpiredRefused(t *testing.T) {
	v := newVolume(t)
	expires := t0.Add(time.Hour)
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", expires))
	now := t0
	p := New(v.dir)
	p.now = func() time.Time { return now }
	mustRetrieve(t, p)
	for _, now = range []time.Time{expires, expires.Add(time.Second), expires.Add(time.Hour)} {
		c, err := p.Retrieve(context.Background())
		if c.HasKeys() || !errors.Is(err, ErrExpired) {
			t.Fatalf("at %v: credentials %+v, err %v; want ErrExpired", now, c, err)
		}
	}
	now = expires.Add(-time.Second)
	mustRetrieve(t, p)
}

// TestCredentialsCacheRefreshes: the SDK's cache keeps the credentials
// until they near their expiry, then takes the next version, and passes
// ErrExpired on rather than expired credentials.
func TestCredentialsCacheRefreshes(t *testing.T) {
	v := newVolume(t)
	now := time.Now()
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", now.Add(time.Hour)))
	cache := aws.NewCredentialsCache(New(v.dir), func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 50 * time.Minute })
	if c := mustRetrieve(t, cache); c.AccessKeyID != "ASIAA" {
		t.Fatalf("got %q", c.AccessKeyID)
	}
	v.publish(secretFiles("ASIAB", "secret-b", "session-b", now.Add(2*time.Hour)))
	if c := mustRetrieve(t, cache); c.AccessKeyID != "ASIAA" {
		t.Fatalf("the cache let go of credentials an hour from expiry: got %q", c.AccessKeyID)
	}

	// Within the window: the cache asks the provider again.
	cache = aws.NewCredentialsCache(New(v.dir), func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 121 * time.Minute })
	mustRetrieve(t, cache)
	v.publish(secretFiles("ASIAC", "secret-c", "session-c", now.Add(3*time.Hour)))
	if c := mustRetrieve(t, cache); c.AccessKeyID != "ASIAC" {
		t.Fatalf("within the expiry window the cache returned %q, want the next version", c.AccessKeyID)
	}

	v.publish(secretFiles("ASIAD", "secret-d", "session-d", now.Add(-time.Second)))
	cache = aws.NewCredentialsCache(New(v.dir))
	if c, err := cache.Retrieve(context.Background()); !errors.Is(err, ErrExpired) {
		t.Fatalf("got %+v, %v; want ErrExpired", c, err)
	}
}

func TestMissingFile(t *testing.T) {
	t.Run("layout", func(t *testing.T) {
		v := newVolume(t)
		files := secretFiles("ASIAA", "secret", "session", t0.Add(time.Hour))
		delete(files, keyCredentialProcess)
		v.publish(files)
		checkMissing(t, v.dir)
	})
	t.Run("plain", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "AWS_ACCESS_KEY_ID"), []byte("ASIAA"), 0o600))
		checkMissing(t, dir)
	})
	t.Run("no folder", func(t *testing.T) {
		checkMissing(t, filepath.Join(t.TempDir(), "absent"))
	})
}

func checkMissing(t *testing.T, dir string) {
	t.Helper()
	_, err := newAt(dir, t0).Retrieve(context.Background())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	want := fmt.Sprintf("awscredentials: cannot read %s in %s: ", keyCredentialProcess, dir)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
}

// TestErrorsHoldNoContent reads broken Secrets whose every value is a
// secret-looking string: no error may contain one, nor any part of it.
func TestErrorsHoldNoContent(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
	valid := t0.Add(time.Hour).Format(time.RFC3339)
	cp := func(fields map[string]any) string {
		b, err := json.Marshal(fields)
		must(t, err)
		return string(b)
	}
	for name, content := range map[string]string{
		"expired":           secretFiles(secret, secret, secret, t0.Add(-time.Second))[keyCredentialProcess],
		"not JSON":          secret,
		"truncated":         `{"Version":1,"AccessKeyId":"` + secret,
		"wrong type":        `{"Version":"` + secret + `"}`,
		"number as key":     `{"Version":1,"AccessKeyId":12345678901234567890}`,
		"array":             `["` + secret + `"]`,
		"version 2":         cp(map[string]any{"Version": 2, "AccessKeyId": secret, "SecretAccessKey": secret, "SessionToken": secret, "Expiration": valid}),
		"no version":        cp(map[string]any{"AccessKeyId": secret, "SecretAccessKey": secret, "SessionToken": secret, "Expiration": valid}),
		"no key id":         cp(map[string]any{"Version": 1, "SecretAccessKey": secret, "SessionToken": secret, "Expiration": valid}),
		"no secret":         cp(map[string]any{"Version": 1, "AccessKeyId": secret, "SessionToken": secret, "Expiration": valid}),
		"no expiration":     cp(map[string]any{"Version": 1, "AccessKeyId": secret, "SecretAccessKey": secret, "SessionToken": secret}),
		"expiration is key": cp(map[string]any{"Version": 1, "AccessKeyId": secret, "SecretAccessKey": secret, "SessionToken": secret, "Expiration": secret}),
		"huge version":      `{"Version":12345678901234567890,"AccessKeyId":"` + secret + `"}`,
		"too large": secretFiles(secret, secret, secret, t0.Add(time.Hour))[keyCredentialProcess] +
			strings.Repeat(" ", maxFileSize),
	} {
		t.Run(name, func(t *testing.T) {
			v := newVolume(t)
			v.publish(map[string]string{keyCredentialProcess: content})
			c, err := newAt(v.dir, t0).Retrieve(context.Background())
			if err == nil {
				t.Fatalf("no error, credentials %+v", c)
			}
			if c.HasKeys() {
				t.Errorf("credentials %+v with the error", c)
			}
			for _, part := range []string{secret, "wJalrXU", "EXAMPLEKEY", "12345678901234567890"} {
				if strings.Contains(err.Error(), part) {
					t.Fatalf("error holds file content: %q", err)
				}
			}
			t.Logf("%s: %v", name, err)
		})
	}
}

// BenchmarkRetrieve is a call with ..data unchanged: one readlink.
func BenchmarkRetrieve(b *testing.B) {
	v := &volume{t: b, dir: b.TempDir()}
	v.publish(secretFiles("ASIAA", "secret-a", "session-a", time.Now().Add(time.Hour)))
	p := New(v.dir)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := p.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
