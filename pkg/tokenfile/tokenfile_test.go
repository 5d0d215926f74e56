package tokenfile

import (
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

	"golang.org/x/oauth2"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// volume builds a Secret volume the way kubelet's atomic writer does.
type volume struct {
	t       *testing.T
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
	v.linkVisible(files)
	if v.current != "" {
		must(v.t, os.RemoveAll(filepath.Join(v.dir, v.current)))
	}
	v.current = filepath.Base(gen)
}

// linkVisible points access_token and friends at ..data, and removes links
// of files the new version lacks.
func (v *volume) linkVisible(files map[string]string) {
	v.t.Helper()
	for _, name := range []string{keyAccessToken, keyTokenType, keyExpiresAt} {
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
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tokenFiles(access, typ string, expires time.Time) map[string]string {
	return map[string]string{
		keyAccessToken: access,
		keyTokenType:   typ,
		keyExpiresAt:   expires.UTC().Format(time.RFC3339),
	}
}

// newAt returns a Source whose clock stands at now.
func newAt(dir string, now time.Time) *Source {
	s := New(dir)
	s.now = func() time.Time { return now }
	return s
}

func mustToken(t *testing.T, s *Source) *oauth2.Token {
	t.Helper()
	tok, err := s.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestReadsKubeletLayout(t *testing.T) {
	v := newVolume(t)
	v.publish(tokenFiles("token-a", "Bearer", t0.Add(time.Hour)))
	tok := mustToken(t, newAt(v.dir, t0))
	if tok.AccessToken != "token-a" || tok.TokenType != "Bearer" || !tok.Expiry.Equal(t0.Add(time.Hour)) {
		t.Fatalf("got %q %q %v", tok.AccessToken, tok.TokenType, tok.Expiry)
	}
	if tok.Expiry.Location() != time.UTC {
		t.Errorf("expiry in %v, want UTC", tok.Expiry.Location())
	}
}

func TestTokenTypeDefaultsToBearer(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"empty":   tokenFiles("token-a", "", t0.Add(time.Hour)),
		"missing": {keyAccessToken: "token-a", keyExpiresAt: t0.Add(time.Hour).Format(time.RFC3339)},
	} {
		t.Run(name, func(t *testing.T) {
			v := newVolume(t)
			v.publish(files)
			if tok := mustToken(t, newAt(v.dir, t0)); tok.TokenType != "Bearer" {
				t.Errorf("TokenType = %q, want Bearer", tok.TokenType)
			}
		})
	}
}

func TestFollowsSwaps(t *testing.T) {
	v := newVolume(t)
	s := newAt(v.dir, t0)
	v.publish(tokenFiles("token-a", "Bearer", t0.Add(time.Hour)))
	mustToken(t, s)
	v.publish(tokenFiles("token-b", "DPoP", t0.Add(2*time.Hour)))
	tok := mustToken(t, s)
	if tok.AccessToken != "token-b" || tok.TokenType != "DPoP" || !tok.Expiry.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after the swap got %q %q %v", tok.AccessToken, tok.TokenType, tok.Expiry)
	}
}

func TestCachedUntilDataChanges(t *testing.T) {
	v := newVolume(t)
	s := newAt(v.dir, t0)
	v.publish(tokenFiles("token-a", "Bearer", t0.Add(time.Hour)))
	mustToken(t, s)
	// Kubelet never edits a version in place; doing it shows whether
	// Token read the files again.
	must(t, os.WriteFile(filepath.Join(v.dir, v.current, keyAccessToken), []byte("edited"), 0o644))
	if tok := mustToken(t, s); tok.AccessToken != "token-a" {
		t.Fatalf("read again with ..data unchanged: %q", tok.AccessToken)
	}
	v.publish(tokenFiles("token-b", "Bearer", t0.Add(time.Hour)))
	if tok := mustToken(t, s); tok.AccessToken != "token-b" {
		t.Fatalf("after the swap got %q", tok.AccessToken)
	}
}

func TestReturnsACopy(t *testing.T) {
	v := newVolume(t)
	v.publish(tokenFiles("token-a", "Bearer", t0.Add(time.Hour)))
	s := newAt(v.dir, t0)
	mustToken(t, s).AccessToken = "changed by the caller"
	if tok := mustToken(t, s); tok.AccessToken != "token-a" {
		t.Fatalf("cache changed through a returned token: %q", tok.AccessToken)
	}
}

func TestVersionRemovedWhileReading(t *testing.T) {
	v := newVolume(t)
	v.publish(tokenFiles("token-old", "Bearer", t0.Add(time.Hour)))
	s := newAt(v.dir, t0)
	swapped := false
	s.afterResolve = func() {
		if !swapped {
			swapped = true
			v.publish(tokenFiles("token-new", "Bearer", t0.Add(2*time.Hour)))
		}
	}
	tok := mustToken(t, s)
	if tok.AccessToken != "token-new" || !tok.Expiry.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("got %q %v, want the new version", tok.AccessToken, tok.Expiry)
	}
}

func TestVersionsKeepVanishing(t *testing.T) {
	v := newVolume(t)
	v.publish(tokenFiles("token-0", "Bearer", t0.Add(time.Hour)))
	s := newAt(v.dir, t0)
	calls := 0
	s.afterResolve = func() {
		calls++
		v.publish(tokenFiles("token-"+strconv.Itoa(calls), "Bearer", t0.Add(time.Hour)))
	}
	_, err := s.Token()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if calls != maxAttempts {
		t.Errorf("%d attempts, want %d", calls, maxAttempts)
	}
}

// TestConcurrentSwaps swaps versions while readers call Token. Each version's
// token names its number and expiry, so a token read with another version's
// expiry or type is caught. A reader's call that starts after version g is
// published must return version g or later. Before each swap the writer
// waits until every reader has finished a call started after the swap before
// last: reads overlap swaps, yet a call never spans more than two swaps,
// fewer than its attempts.
func TestConcurrentSwaps(t *testing.T) {
	const readers, versions = 8, 200
	v := newVolume(t)
	v.publish(numbered(1))
	s := newAt(v.dir, t0)
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
				if err := checkNumbered(s, start); err != nil {
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

// numbered is version g: its token and type carry g and its expiry.
func numbered(g int64) map[string]string {
	expires := t0.Add(time.Duration(g) * time.Minute)
	access := fmt.Sprintf("token-%d-%d", g, expires.Unix())
	return tokenFiles(access, "Type"+strconv.FormatInt(g, 10), expires)
}

func checkNumbered(s *Source, atLeast int64) error {
	tok, err := s.Token()
	if err != nil {
		return err
	}
	var g, unix int64
	if _, err := fmt.Sscanf(tok.AccessToken, "token-%d-%d", &g, &unix); err != nil {
		return fmt.Errorf("unexpected token %q", tok.AccessToken)
	}
	if unix != tok.Expiry.Unix() || tok.TokenType != "Type"+strconv.FormatInt(g, 10) {
		return fmt.Errorf("torn read: token %q, type %q, expiry %v", tok.AccessToken, tok.TokenType, tok.Expiry)
	}
	if g < atLeast {
		return fmt.Errorf("stale read: version %d after version %d was published", g, atLeast)
	}
	return nil
}

func TestPlainFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write(keyAccessToken, "token-a\n")
	write(keyExpiresAt, t0.Add(time.Hour).Format(time.RFC3339)+"\n")
	s := newAt(dir, t0)
	if tok := mustToken(t, s); tok.AccessToken != "token-a" || tok.TokenType != "Bearer" {
		t.Fatalf("got %q %q", tok.AccessToken, tok.TokenType)
	}

	write(keyAccessToken, "token-bb")
	if tok := mustToken(t, s); tok.AccessToken != "token-bb" {
		t.Fatalf("after a size change got %q", tok.AccessToken)
	}

	// Same size: only the modification time tells.
	path := filepath.Join(dir, keyAccessToken)
	write(keyAccessToken, "token-cc")
	must(t, os.Chtimes(path, t0, t0))
	if tok := mustToken(t, s); tok.AccessToken != "token-cc" {
		t.Fatalf("after a time change got %q", tok.AccessToken)
	}

	// Same size and time: the cache holds.
	write(keyAccessToken, "token-dd")
	must(t, os.Chtimes(path, t0, t0))
	if tok := mustToken(t, s); tok.AccessToken != "token-cc" {
		t.Fatalf("read again with size and time unchanged: %q", tok.AccessToken)
	}
}

func TestPlainFileChangedWhileReading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, keyAccessToken)
	must(t, os.WriteFile(path, []byte("token-a"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, keyExpiresAt), []byte(t0.Add(time.Hour).Format(time.RFC3339)), 0o600))
	s := newAt(dir, t0)
	rewritten := false
	s.afterResolve = func() {
		if !rewritten {
			rewritten = true
			must(t, os.WriteFile(path, []byte("token-new"), 0o600))
		}
	}
	if tok := mustToken(t, s); tok.AccessToken != "token-new" {
		t.Fatalf("got %q, want the rewritten token", tok.AccessToken)
	}
}

func TestExpiredRefused(t *testing.T) {
	v := newVolume(t)
	expires := t0.Add(time.Hour)
	v.publish(tokenFiles("token-a", "Bearer", expires))
	now := t0
	s := New(v.dir)
	s.now = func() time.Time { return now }
	mustToken(t, s)
	for _, now = range []time.Time{expires, expires.Add(time.Second), expires.Add(time.Hour)} {
		tok, err := s.Token()
		if tok != nil || !errors.Is(err, ErrExpired) {
			t.Fatalf("at %v: token %v, err %v; want ErrExpired", now, tok, err)
		}
	}
	now = expires.Add(-time.Second)
	mustToken(t, s)
}

func TestMissingFiles(t *testing.T) {
	for _, name := range []string{keyAccessToken, keyExpiresAt} {
		t.Run("layout/"+name, func(t *testing.T) {
			v := newVolume(t)
			files := tokenFiles("token-a", "Bearer", t0.Add(time.Hour))
			delete(files, name)
			v.publish(files)
			checkMissing(t, v.dir, name)
		})
		t.Run("plain/"+name, func(t *testing.T) {
			dir := t.TempDir()
			for n, content := range tokenFiles("token-a", "Bearer", t0.Add(time.Hour)) {
				if n != name {
					must(t, os.WriteFile(filepath.Join(dir, n), []byte(content), 0o600))
				}
			}
			checkMissing(t, dir, name)
		})
	}
	t.Run("no folder", func(t *testing.T) {
		checkMissing(t, filepath.Join(t.TempDir(), "absent"), keyAccessToken)
	})
}

func checkMissing(t *testing.T, dir, name string) {
	t.Helper()
	_, err := newAt(dir, t0).Token()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	want := fmt.Sprintf("tokenfile: cannot read %s in %s: ", name, dir)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
}

// TestErrorsHoldNoContent reads broken Secrets whose every file holds a
// secret-looking value: no error may contain one.
func TestErrorsHoldNoContent(t *testing.T) {
	const secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
	valid := t0.Add(time.Hour).Format(time.RFC3339)
	for name, files := range map[string]map[string]string{
		"expired":             tokenFiles(secret, secret, t0.Add(-time.Second)),
		"expires_at is token": {keyAccessToken: secret, keyTokenType: secret, keyExpiresAt: secret},
		"empty token":         {keyAccessToken: " \n", keyTokenType: secret, keyExpiresAt: valid},
		"no expires_at":       {keyAccessToken: secret, keyTokenType: secret},
		"no access_token":     {keyTokenType: secret, keyExpiresAt: secret},
	} {
		t.Run(name, func(t *testing.T) {
			v := newVolume(t)
			v.publish(files)
			_, err := newAt(v.dir, t0).Token()
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Fatalf("error holds file content: %q", err)
			}
			t.Logf("%s: %v", name, err)
		})
	}
}
