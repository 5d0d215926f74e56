// Package awscredentials reads the temporary AWS credentials that
// token-operator keeps in a Secret mounted as a volume, as an
// [aws.CredentialsProvider]:
//
//	cfg, err := config.LoadDefaultConfig(ctx,
//		config.WithCredentialsProvider(awscredentials.New("/var/run/secrets/aws")))
//
// or, on an aws.Config built by hand,
//
//	cfg.Credentials = aws.NewCredentialsCache(awscredentials.New("/var/run/secrets/aws"))
//
// A [Provider] reads credential_process.json, the one file of the Secret
// that holds the access key ID, secret access key, session token and
// expiration together, so they always come from one version. Kubelet writes
// each version of a mounted Secret to a new hidden folder and then swaps the
// ..data symlink to it; the file is read from the folder ..data points to,
// and read again only when ..data changes: a call costs one readlink. A
// plain folder of regular files (a local run, a test) works too; then the
// file is read again when its size or modification time changes.
//
// The returned credentials can expire, with Expires set to their
// Expiration, so the SDK's [aws.CredentialsCache] calls Retrieve again once
// they near it. Retrieve never returns expired credentials: it returns an
// error wrapping [ErrExpired] instead. No error contains anything read from
// the file.
//
// The cache keeps credentials until Expires less its ExpiryWindow, which is
// 0 unless set. The operator writes new credentials, by default when a
// third of their lifetime is left, so a window of a few minutes (less than
// that third) takes them well before the old ones expire, and no request is
// signed with credentials that expire on the way:
//
//	config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
//		o.ExpiryWindow = 5 * time.Minute
//	})
package awscredentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// File names in the Secret, and kubelet's link to the current version.
const (
	keyCredentialProcess = "credential_process.json"
	dataLink             = "..data"
)

// ProviderName is the Source of the credentials Retrieve returns.
const ProviderName = "TokenOperatorSecretProvider"

// maxAttempts bounds the reads of one Retrieve call. A retry happens only
// when a version vanished (or a plain file changed) while being read, and
// kubelet writes a new version at most once per sync, so one retry nearly
// always does.
const maxAttempts = 5

// maxFileSize bounds what is read: the file holds four short values.
const maxFileSize = 64 << 10

// ErrExpired is wrapped by the error Retrieve returns when the credentials'
// Expiration has passed.
var ErrExpired = errors.New("awscredentials: credentials have expired")

// errChanged marks a plain file that changed while being read.
var errChanged = errors.New("changed while being read")

// Provider is an [aws.CredentialsProvider] reading a mounted AWS credentials
// Secret. It is safe for concurrent use.
type Provider struct {
	dir string
	now func() time.Time
	// afterResolve, when set by tests, runs between finding a version of
	// the file and reading it.
	afterResolve func()
	cache        atomic.Pointer[entry]
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// entry is the credentials parsed from the version identified by key.
type entry struct {
	key   string
	creds aws.Credentials
}

// version is one version of the file. The kubelet layout logic is the same
// as pkg/tokenfile's; it is repeated here so that this module does not
// depend on golang.org/x/oauth2 through it.
type version struct {
	dir   string // folder holding the file
	key   string // changes whenever the content may have changed
	plain bool   // a regular file, possibly rewritten in place
}

// New returns a Provider reading the Secret mounted at dir.
func New(dir string) *Provider {
	return &Provider{dir: dir, now: time.Now}
}

// Retrieve returns the current credentials, read from one version of the
// Secret. ctx is not used: reading a local file does not block for long.
func (p *Provider) Retrieve(context.Context) (aws.Credentials, error) {
	creds, err := p.load()
	if err != nil {
		return aws.Credentials{}, err
	}
	if !p.now().Before(creds.Expires) {
		return aws.Credentials{}, fmt.Errorf("%w: the Expiration in %s in %s has passed", ErrExpired, keyCredentialProcess, p.dir)
	}
	return creds, nil
}

func (p *Provider) load() (aws.Credentials, error) {
	for attempt := 1; ; attempt++ {
		v, err := p.resolve()
		if err != nil {
			return aws.Credentials{}, err
		}
		if e := p.cache.Load(); e != nil && e.key == v.key {
			return e.creds, nil
		}
		if p.afterResolve != nil {
			p.afterResolve()
		}
		creds, err := readCredentials(p.dir, v.dir)
		if v.plain {
			// A file rewritten in place may have been read half written:
			// whatever was read, try again if it changed meanwhile.
			if changed := p.unchanged(v); changed != nil {
				err = changed
			}
		}
		if err == nil {
			p.cache.Store(&entry{key: v.key, creds: creds})
			return creds, nil
		}
		// A missing file may only mean that kubelet removed the version
		// after swapping ..data: resolve again.
		retry := errors.Is(err, fs.ErrNotExist) || errors.Is(err, errChanged)
		if !retry || attempt == maxAttempts {
			return aws.Credentials{}, err
		}
	}
}

// resolve finds the current version: the folder ..data points to or, with
// no ..data, the folder itself.
func (p *Provider) resolve() (version, error) {
	target, err := os.Readlink(filepath.Join(p.dir, dataLink))
	switch {
	case err == nil:
		if !filepath.IsAbs(target) {
			target = filepath.Join(p.dir, target)
		}
		return version{dir: target, key: target}, nil
	case errors.Is(err, fs.ErrNotExist):
		return p.resolvePlain()
	default:
		return version{}, fileError(p.dir, dataLink, err)
	}
}

// resolvePlain keys a regular file by size and modification time, as it has
// no version folder.
func (p *Provider) resolvePlain() (version, error) {
	fi, err := os.Stat(filepath.Join(p.dir, keyCredentialProcess))
	if err != nil {
		return version{}, fileError(p.dir, keyCredentialProcess, err)
	}
	key := fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
	return version{dir: p.dir, key: key, plain: true}, nil
}

// unchanged keeps credentials read from a plain file only if it did not
// change while being read.
func (p *Provider) unchanged(v version) error {
	again, err := p.resolvePlain()
	if err != nil {
		return err
	}
	if again.key != v.key {
		return fmt.Errorf("awscredentials: %s in %s %w", keyCredentialProcess, p.dir, errChanged)
	}
	return nil
}

// credentialProcess is the credential_process JSON the AWS SDKs read.
type credentialProcess struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// readCredentials reads the file in from; errors name dir, the folder the
// caller knows.
func readCredentials(dir, from string) (aws.Credentials, error) {
	f, err := os.Open(filepath.Join(from, keyCredentialProcess))
	if err != nil {
		return aws.Credentials{}, fileError(dir, keyCredentialProcess, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return aws.Credentials{}, fileError(dir, keyCredentialProcess, err)
	}
	if len(b) > maxFileSize {
		return aws.Credentials{}, fmt.Errorf("awscredentials: %s in %s is larger than %d bytes", keyCredentialProcess, dir, maxFileSize)
	}
	return parse(dir, b)
}

func parse(dir string, b []byte) (aws.Credentials, error) {
	bad := func(what string) error {
		return fmt.Errorf("awscredentials: %s in %s %s", keyCredentialProcess, dir, what)
	}
	var cp credentialProcess
	if err := json.Unmarshal(b, &cp); err != nil {
		// encoding/json's errors may quote the text: say only what is wrong.
		return aws.Credentials{}, bad("is not a credential_process JSON object")
	}
	switch {
	case cp.Version != 1:
		return aws.Credentials{}, bad("does not have Version 1")
	case cp.AccessKeyID == "":
		return aws.Credentials{}, bad("has no AccessKeyId")
	case cp.SecretAccessKey == "":
		return aws.Credentials{}, bad("has no SecretAccessKey")
	case cp.Expiration == "":
		return aws.Credentials{}, bad("has no Expiration")
	}
	expires, err := time.Parse(time.RFC3339, cp.Expiration)
	if err != nil {
		// time's error quotes the text: say only what is wrong.
		return aws.Credentials{}, bad("has an Expiration that is not an RFC 3339 time")
	}
	return aws.Credentials{
		AccessKeyID:     cp.AccessKeyID,
		SecretAccessKey: cp.SecretAccessKey,
		SessionToken:    cp.SessionToken,
		Source:          ProviderName,
		CanExpire:       true,
		Expires:         expires.UTC(),
	}, nil
}

// fileError drops the path of a *fs.PathError, which may name a hidden
// version folder, and names the mounted folder instead. errors.Is still
// matches fs.ErrNotExist.
func fileError(dir, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("awscredentials: cannot read %s in %s: %w", name, dir, err)
}
