package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"hash"
	"strings"
	"unicode/utf16"

	"software.sslmate.com/src/go-pkcs12"
)

// maxPKCS12Size bounds the archive: a key and a long chain take a few KiB.
const maxPKCS12Size = 1 << 20

// maxPKCS12Iterations bounds the password hashing one parse may ask for,
// summed over the MAC, every encrypted safe and every shrouded key. Exports
// need far less (OpenSSL 2048 per step, Windows 2000-10000, Java keytool
// 10000), and one PBKDF2 step at OWASP's 600000 still fits. .NET's PKCS#12
// loader uses the same total. At the limit a parse takes about half a
// second of CPU, against minutes for the 2^31-1 an archive may declare.
const maxPKCS12Iterations = 1_000_000

var (
	errPKCS12TooLarge  = invalid("the PKCS#12 archive is larger than 1 MiB", nil)
	errPKCS12TooCostly = invalid("the PKCS#12 archive asks for more than 1000000 key derivation iterations in total; export it again with the tool's default iteration count", nil)
)

var (
	oidP12Data             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidP12EncryptedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidP12ShroudedKeyBag   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPBEWithSHA3DES      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHA128BitRC2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBEWithSHA40BitRC2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidPBES2               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidHMACWithSHA1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256      = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA512      = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidSHA1                = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA512              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

var (
	errPKCS12Unsupported    = errors.New("unsupported PKCS#12 algorithm")
	errPKCS12DecryptFailure = errors.New("PKCS#12 safe does not decrypt")
)

// The types below mirror go-pkcs12's, so that what fails to parse here fails
// there too, before it derives any key.

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12EncryptedData struct {
	Version int
	Info    p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType      asn1.ObjectIdentifier
	Algorithm        pkix.AlgorithmIdentifier
	EncryptedContent []byte `asn1:"tag:0,optional"`
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type p12EncryptedKey struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

type pbes1Params struct {
	Salt       []byte
	Iterations int
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type pbmac1Params struct {
	KDF pkix.AlgorithmIdentifier
	MAC pkix.AlgorithmIdentifier
}

// unmarshalAll is asn1.Unmarshal refusing trailing data, as go-pkcs12 does.
func unmarshalAll(der []byte, out any) error {
	rest, err := asn1.Unmarshal(der, out)
	if err == nil && len(rest) != 0 {
		err = errors.New("trailing data after ASN.1 value")
	}
	return err
}

// checkPKCS12Cost refuses an archive whose key derivations would cost more
// than maxPKCS12Iterations, before go-pkcs12 runs any of them: that library
// derives whatever iteration count the archive declares.
func checkPKCS12Cost(data []byte, password string) error {
	if len(data) > maxPKCS12Size {
		return errPKCS12TooLarge
	}
	unreadable := func(err error) error {
		return invalid("the data is not a readable PKCS#12 archive with one private key and certificate", err)
	}
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		return unreadable(err)
	}
	if pfx.Version != 3 || !pfx.AuthSafe.ContentType.Equal(oidP12Data) {
		return unreadable(nil)
	}
	var authSafe asn1.RawValue
	if err := unmarshalAll(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return unreadable(err)
	}
	var safes []p12ContentInfo
	if err := unmarshalAll(authSafe.Bytes, &safes); err != nil {
		return unreadable(err)
	}
	// go-pkcs12 refuses other counts before decrypting anything.
	if len(safes) < 1 || len(safes) > 2 {
		return unreadable(nil)
	}

	budget := maxPKCS12Iterations
	spend := func(n int) bool {
		budget -= max(1, min(n, maxPKCS12Iterations+1))
		return budget >= 0
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) == 0 && password != "" {
		return unreadable(nil) // go-pkcs12 wants a MAC whenever there is a password
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) != 0 {
		n, err := macIterations(&pfx.MacData)
		if err != nil {
			return unreadable(err)
		}
		// An empty password is tried twice: as an empty BMPString and as no bytes.
		if !spend(n) || (password == "" && !spend(n)) {
			return errPKCS12TooCostly
		}
	}
	var encrypted []p12EncryptedContentInfo
	for _, safe := range safes {
		switch {
		case safe.ContentType.Equal(oidP12Data):
			var content []byte
			if err := unmarshalAll(safe.Content.Bytes, &content); err != nil {
				return unreadable(err)
			}
			var bags []p12SafeBag
			if err := unmarshalAll(content, &bags); err != nil {
				return unreadable(err)
			}
			n, err := shroudedKeyIterations(bags)
			if err != nil {
				return unreadable(err)
			}
			if !spend(n) {
				return errPKCS12TooCostly
			}
		case safe.ContentType.Equal(oidP12EncryptedData):
			var ed p12EncryptedData
			if err := unmarshalAll(safe.Content.Bytes, &ed); err != nil {
				return unreadable(err)
			}
			if ed.Version != 0 {
				return unreadable(nil)
			}
			n, err := pbeIterations(ed.Info.Algorithm)
			if err != nil {
				return unreadable(err)
			}
			if !spend(n) {
				return errPKCS12TooCostly
			}
			encrypted = append(encrypted, ed.Info)
		default:
			return unreadable(nil)
		}
	}

	// Keys shrouded inside an encrypted safe show their iteration count only
	// once decrypted, and go-pkcs12 would derive it unchecked. The counts
	// above are within budget, so decrypting here is bounded too.
	passwords, err := pkcs12Passwords(password)
	if err != nil {
		return unreadable(err)
	}
	for _, info := range encrypted {
		n, err := hiddenKeyIterations(info, passwords)
		if errors.Is(err, errPKCS12DecryptFailure) {
			// go-pkcs12 could not decrypt it either; with a valid MAC this
			// means the password is wrong.
			return invalid("the PKCS#12 password is incorrect", pkcs12.ErrIncorrectPassword)
		}
		if err != nil {
			return unreadable(err)
		}
		if !spend(n) {
			return errPKCS12TooCostly
		}
	}
	return nil
}

// macIterations is the MAC's key derivation count, as go-pkcs12 reads it.
func macIterations(mac *p12MacData) (int, error) {
	alg := mac.Mac.Algorithm
	switch {
	case alg.Algorithm.Equal(oidSHA1), alg.Algorithm.Equal(oidSHA256), alg.Algorithm.Equal(oidSHA512):
		return mac.Iterations, nil
	case alg.Algorithm.Equal(oidPBMAC1):
		var params pbmac1Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
			return 0, err
		}
		return pbkdf2Iterations(params.KDF)
	default:
		return 0, errPKCS12Unsupported
	}
}

// pbeIterations is the iteration count of a PKCS#12 PBE or PBES2 algorithm.
func pbeIterations(alg pkix.AlgorithmIdentifier) (int, error) {
	switch {
	case alg.Algorithm.Equal(oidPBEWithSHA3DES), alg.Algorithm.Equal(oidPBEWithSHA128BitRC2), alg.Algorithm.Equal(oidPBEWithSHA40BitRC2):
		var params pbes1Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
			return 0, err
		}
		return params.Iterations, nil
	case alg.Algorithm.Equal(oidPBES2):
		var params pbes2Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
			return 0, err
		}
		return pbkdf2Iterations(params.KDF)
	default:
		return 0, errPKCS12Unsupported
	}
}

func pbkdf2Iterations(kdf pkix.AlgorithmIdentifier) (int, error) {
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return 0, errPKCS12Unsupported
	}
	var params pbkdf2Params
	if err := unmarshalAll(kdf.Parameters.FullBytes, &params); err != nil {
		return 0, err
	}
	return params.Iterations, nil
}

// shroudedKeyIterations sums the iteration counts of the shrouded keys among
// bags. go-pkcs12 decrypts only the first, but counting every one keeps the
// check simple and errs on the safe side.
func shroudedKeyIterations(bags []p12SafeBag) (int, error) {
	total := 0
	for _, bag := range bags {
		if !bag.ID.Equal(oidP12ShroudedKeyBag) {
			continue
		}
		var key p12EncryptedKey
		if err := unmarshalAll(bag.Value.Bytes, &key); err != nil {
			return 0, err
		}
		n, err := pbeIterations(key.Algorithm)
		if err != nil {
			return 0, err
		}
		total = min(total+max(1, n), maxPKCS12Iterations+1)
	}
	return total, nil
}

// p12Passwords holds the password in the forms go-pkcs12 derives keys from.
type p12Passwords struct {
	bmp  [][]byte // PKCS#12 PBE: BMPString with terminator; for "" also no bytes
	utf8 string   // PBES2
}

func pkcs12Passwords(password string) (p12Passwords, error) {
	bmp := make([]byte, 0, 2*len(password)+2)
	var utf8 strings.Builder
	for _, r := range password {
		if r1, _ := utf16.EncodeRune(r); r1 != '\uFFFD' {
			return p12Passwords{}, errors.New("password has characters outside the BMP")
		}
		bmp = append(bmp, byte(r>>8), byte(r))
		utf8.WriteRune(r)
	}
	p := p12Passwords{bmp: [][]byte{append(bmp, 0, 0)}, utf8: utf8.String()}
	if password == "" {
		p.bmp = append(p.bmp, nil)
	}
	return p, nil
}

// hiddenKeyIterations decrypts an encrypted safe as go-pkcs12 would and sums
// the iteration counts of the shrouded keys inside. It reports
// errPKCS12DecryptFailure when no form of the password yields SafeContents.
func hiddenKeyIterations(info p12EncryptedContentInfo, passwords p12Passwords) (int, error) {
	candidates := passwords.bmp
	if info.Algorithm.Algorithm.Equal(oidPBES2) {
		candidates = candidates[:1] // both forms of "" are the same UTF-8 string
	}
	total, decrypted := 0, false
	for _, password := range candidates {
		plain, err := pbeDecrypt(info.Algorithm, info.EncryptedContent, password, passwords.utf8)
		if errors.Is(err, errPKCS12DecryptFailure) {
			continue
		}
		if err != nil {
			return 0, err
		}
		var bags []p12SafeBag
		if unmarshalAll(plain, &bags) != nil {
			continue // a wrong key whose output happened to unpad
		}
		n, err := shroudedKeyIterations(bags)
		if err != nil {
			return 0, err
		}
		total, decrypted = total+n, true
	}
	if !decrypted {
		return 0, errPKCS12DecryptFailure
	}
	return total, nil
}

// blockDecrypter is the half of cipher.Block that CBC decryption needs.
type blockDecrypter interface {
	BlockSize() int
	Decrypt(dst, src []byte)
}

// pbeDecrypt follows go-pkcs12's pbDecrypt: CBC with PKCS#7 padding.
func pbeDecrypt(alg pkix.AlgorithmIdentifier, ciphertext, bmpPassword []byte, utf8Password string) ([]byte, error) {
	block, iv, err := pbeCipher(alg, bmpPassword, utf8Password)
	if err != nil {
		return nil, err
	}
	size := block.BlockSize()
	if len(ciphertext) == 0 || len(ciphertext)%size != 0 {
		return nil, errPKCS12DecryptFailure
	}
	plain := make([]byte, len(ciphertext))
	prev := iv
	for i := 0; i < len(ciphertext); i += size {
		block.Decrypt(plain[i:i+size], ciphertext[i:i+size])
		for j := range size {
			plain[i+j] ^= prev[j]
		}
		prev = ciphertext[i : i+size]
	}
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > size || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errPKCS12DecryptFailure
	}
	return plain[:len(plain)-pad], nil
}

func pbeCipher(alg pkix.AlgorithmIdentifier, bmpPassword []byte, utf8Password string) (blockDecrypter, []byte, error) {
	if alg.Algorithm.Equal(oidPBES2) {
		return pbes2Cipher(alg, utf8Password)
	}
	var keyLen int
	switch {
	case alg.Algorithm.Equal(oidPBEWithSHA3DES):
		keyLen = 24
	case alg.Algorithm.Equal(oidPBEWithSHA128BitRC2):
		keyLen = 16
	case alg.Algorithm.Equal(oidPBEWithSHA40BitRC2):
		keyLen = 5
	default:
		return nil, nil, errPKCS12Unsupported
	}
	var params pbes1Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
		return nil, nil, err
	}
	key := pkcs12KDF(bmpPassword, params.Salt, params.Iterations, 1, keyLen)
	iv := pkcs12KDF(bmpPassword, params.Salt, params.Iterations, 2, 8)
	if keyLen == 24 {
		block, err := des.NewTripleDESCipher(key)
		return block, iv, err
	}
	return newRC2(key), iv, nil
}

func pbes2Cipher(alg pkix.AlgorithmIdentifier, password string) (blockDecrypter, []byte, error) {
	var params pbes2Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
		return nil, nil, err
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, nil, errPKCS12Unsupported
	}
	var kdf pbkdf2Params
	if err := unmarshalAll(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, nil, err
	}
	if kdf.Salt.Tag != asn1.TagOctetString {
		return nil, nil, errPKCS12Unsupported
	}
	var prf func() hash.Hash
	switch {
	case kdf.PRF.Algorithm.Equal(oidHMACWithSHA256):
		prf = sha256.New
	case kdf.PRF.Algorithm.Equal(oidHMACWithSHA512):
		prf = sha512.New
	case kdf.PRF.Algorithm.Equal(oidHMACWithSHA1), kdf.PRF.Algorithm == nil:
		prf = sha1.New
	default:
		return nil, nil, errPKCS12Unsupported
	}
	var keyLen int
	switch {
	case params.Scheme.Algorithm.Equal(oidAES256CBC):
		keyLen = 32
	case params.Scheme.Algorithm.Equal(oidAES192CBC):
		keyLen = 24
	case params.Scheme.Algorithm.Equal(oidAES128CBC):
		keyLen = 16
	default:
		return nil, nil, errPKCS12Unsupported
	}
	key, err := pbkdf2.Key(prf, password, kdf.Salt.Bytes, kdf.Iterations, keyLen)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	iv := params.Scheme.Parameters.Bytes
	if len(iv) != block.BlockSize() {
		return nil, nil, errPKCS12Unsupported
	}
	return block, iv, nil
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-1, the
// hash of every PKCS#12 PBE scheme.
func pkcs12KDF(password, salt []byte, iterations int, id byte, size int) []byte {
	const v = 64 // SHA-1 block size
	d := bytes.Repeat([]byte{id}, v)
	in := append(repeatTo(salt, v), repeatTo(password, v)...)
	out := make([]byte, 0, size+sha1.Size)
	for {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for j := 1; j < iterations; j++ { // not range: iterations-1 may overflow
			sum := sha1.Sum(a)
			a = sum[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			return out[:size]
		}
		// Each v-byte block of in becomes (block + B + 1) mod 2^(8v),
		// where B is a repeated to v bytes.
		b := repeatTo(a, v)
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k], carry = byte(sum), sum>>8
			}
		}
	}
}

// repeatTo repeats p up to the next multiple of v bytes; empty stays empty.
func repeatTo(p []byte, v int) []byte {
	if len(p) == 0 {
		return nil
	}
	n := v * ((len(p) + v - 1) / v)
	return bytes.Repeat(p, (n+len(p)-1)/len(p))[:n]
}
