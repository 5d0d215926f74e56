// Package tokenfile reads the OAuth2 access token that token-operator keeps in
// a Secret mounted as a volume, as an [oauth2.TokenSource]:
//
//	client := oauth2.NewClient(ctx, tokenfile.New("/var/run/secrets/token"))
//
// The folder holds access_token, token_type and expires_at (RFC 3339, UTC).
// Kubelet writes each version of a mounted Secret to a new hidden folder and
// then swaps the ..data symlink to it. A [Source] reads all three files from
// the folder ..data points to, so a token never comes with another version's
// expiry, and reads them again only when ..data changes: calling Token on
// every request costs one readlink. A plain folder of regular files (a local
// run, a test) works too; then the files are read again when their size or
// modification time changes.
//
// Token never returns an expired token: it returns an error wrapping
// [ErrExpired] instead. No error contains anything read from the files.
//
// oauth2.NewClient keeps a token until shortly before it expires. To send
// each new token as soon as kubelet has written it (for example after the
// token service revoked the previous one), call Token on every request:
//
//	client := &http.Client{Transport: &oauth2.Transport{Source: tokenfile.New(dir)}}
package tokenfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// File names in the Secret, and kubelet's link to the current version.
const (
	keyAccessToken = "access_token"
	keyTokenType   = "token_type"
	keyExpiresAt   = "expires_at"
	dataLink       = "..data"
)

// maxAttempts bounds the reads of one Token call. A retry happens only when a
// version vanished (or a plain file changed) while being read, and kubelet
// writes a new version at most once per sync, so one retry nearly always does.
const maxAttempts = 5

// ErrExpired is wrapped by the error Token returns when expires_at has passed.
var ErrExpired = errors.New("tokenfile: token has expired")

// errChanged marks plain files that changed while being read.
var errChanged = errors.New("changed while being read")

// Source is an [oauth2.TokenSource] reading a mounted token Secret. It is
// safe for concurrent use.
type Source struct {
	dir string
	now func() time.Time
	// afterResolve, when set by tests, runs between finding a version of
	// the files and reading it.
	afterResolve func()
	cache        atomic.Pointer[entry]
}

var _ oauth2.TokenSource = (*Source)(nil)

// entry is the token parsed from the version identified by key.
type entry struct {
	key string
	tok oauth2.Token
}

// version is one consistent set of the files.
type version struct {
	dir   string // folder holding the files
	key   string // changes whenever the content may have changed
	plain bool   // regular files, possibly rewritten in place
}

// New returns a Source reading the Secret mounted at dir.
func New(dir string) *Source {
	return &Source{dir: dir, now: time.Now}
}

// Token returns the current token, read from one version of the files.
func (s *Source) Token() (*oauth2.Token, error) {
	tok, err := s.load()
	if err != nil {
		return nil, err
	}
	if !s.now().Before(tok.Expiry) {
		return nil, fmt.Errorf("%w: expires_at in %s has passed", ErrExpired, s.dir)
	}
	// A copy: callers such as oauth2.ReuseTokenSource modify the token.
	return &tok, nil
}

func (s *Source) load() (oauth2.Token, error) {
	for attempt := 1; ; attempt++ {
		v, err := s.resolve()
		if err != nil {
			return oauth2.Token{}, err
		}
		if e := s.cache.Load(); e != nil && e.key == v.key {
			return e.tok, nil
		}
		if s.afterResolve != nil {
			s.afterResolve()
		}
		tok, err := readToken(s.dir, v.dir)
		if err == nil && v.plain {
			err = s.unchanged(v)
		}
		if err == nil {
			s.cache.Store(&entry{key: v.key, tok: tok})
			return tok, nil
		}
		// A missing file may only mean that kubelet removed the version
		// after swapping ..data: resolve again.
		retry := errors.Is(err, fs.ErrNotExist) || errors.Is(err, errChanged)
		if !retry || attempt == maxAttempts {
			return oauth2.Token{}, err
		}
	}
}

// resolve finds the current version: the folder ..data points to or, with
// no ..data, the folder itself.
func (s *Source) resolve() (version, error) {
	target, err := os.Readlink(filepath.Join(s.dir, dataLink))
	switch {
	case err == nil:
		if !filepath.IsAbs(target) {
			target = filepath.Join(s.dir, target)
		}
		return version{dir: target, key: target}, nil
	case errors.Is(err, fs.ErrNotExist):
		return s.resolvePlain()
	default:
		return version{}, fileError(s.dir, dataLink, err)
	}
}

// resolvePlain keys regular files by size and modification time, as they
// have no version folder.
func (s *Source) resolvePlain() (version, error) {
	var key strings.Builder
	for _, name := range []string{keyAccessToken, keyTokenType, keyExpiresAt} {
		fi, err := os.Stat(filepath.Join(s.dir, name))
		switch {
		case err == nil:
			fmt.Fprintf(&key, "%s:%d:%d;", name, fi.Size(), fi.ModTime().UnixNano())
		case name == keyTokenType && errors.Is(err, fs.ErrNotExist):
			// Optional: the type defaults to Bearer.
		default:
			return version{}, fileError(s.dir, name, err)
		}
	}
	return version{dir: s.dir, key: key.String(), plain: true}, nil
}

// unchanged keeps a token read from plain files only if they did not change
// while being read.
func (s *Source) unchanged(v version) error {
	again, err := s.resolvePlain()
	if err != nil {
		return err
	}
	if again.key != v.key {
		return fmt.Errorf("tokenfile: files in %s %w", s.dir, errChanged)
	}
	return nil
}

// readToken reads the files in from; errors name dir, the folder the caller
// knows. token_type is read first: if it is missing but the others are
// there, the version has none (versions are never re-created), rather than
// having vanished in between.
func readToken(dir, from string) (oauth2.Token, error) {
	typ, err := readFile(dir, from, keyTokenType)
	if errors.Is(err, fs.ErrNotExist) {
		typ, err = "", nil
	}
	if err != nil {
		return oauth2.Token{}, err
	}
	access, err := readFile(dir, from, keyAccessToken)
	if err != nil {
		return oauth2.Token{}, err
	}
	expires, err := readFile(dir, from, keyExpiresAt)
	if err != nil {
		return oauth2.Token{}, err
	}
	return parse(dir, access, typ, expires)
}

func parse(dir, access, typ, expires string) (oauth2.Token, error) {
	if access == "" {
		return oauth2.Token{}, fmt.Errorf("tokenfile: %s in %s is empty", keyAccessToken, dir)
	}
	expiry, err := time.Parse(time.RFC3339, expires)
	if err != nil {
		// time's error quotes the text: say only what is wrong.
		return oauth2.Token{}, fmt.Errorf("tokenfile: %s in %s is not an RFC 3339 time", keyExpiresAt, dir)
	}
	if typ == "" {
		typ = "Bearer"
	}
	return oauth2.Token{AccessToken: access, TokenType: typ, Expiry: expiry.UTC()}, nil
}

// readFile trims surrounding white space, such as the newline of a file
// written by hand.
func readFile(dir, from, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(from, name))
	if err != nil {
		return "", fileError(dir, name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// fileError drops the path of a *fs.PathError, which may name a hidden
// version folder, and names the mounted folder instead. errors.Is still
// matches fs.ErrNotExist.
func fileError(dir, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("tokenfile: cannot read %s in %s: %w", name, dir, err)
}
