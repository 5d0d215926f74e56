package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

// hugeIterations is what a hostile archive declares: minutes of CPU per parse.
const hugeIterations = math.MaxInt32

func TestParsePKCS12RefusesCostlyArchives(t *testing.T) {
	m := testMaterial(t)
	modern := encodeP12(t, m.ecKey, m.ecCert, nil)

	tests := []struct {
		name     string
		data     []byte
		password string
		wantErr  *InvalidError
	}{
		{
			name: "Huge MAC iteration count", password: p12Password, wantErr: errPKCS12TooCostly,
			data: patchP12(t, modern, func(p *p12PFX, _ []p12ContentInfo) { p.MacData.Iterations = hugeIterations }),
		},
		{
			name: "Huge iteration count on the encrypted certificate safe", password: p12Password, wantErr: errPKCS12TooCostly,
			data: patchP12(t, modern, func(_ *p12PFX, safes []p12ContentInfo) { setSafeIterations(t, &safes[0], hugeIterations) }),
		},
		{
			name: "Huge iteration count on the shrouded key", password: p12Password, wantErr: errPKCS12TooCostly,
			data: patchP12(t, modern, func(_ *p12PFX, safes []p12ContentInfo) { setKeyIterations(t, &safes[1], hugeIterations) }),
		},
		{
			name: "Huge iteration count on a key hidden inside an encrypted safe", password: p12Password, wantErr: errPKCS12TooCostly,
			data: hideKey(t, modern, hugeIterations),
		},
		{
			name: "Counts that are each moderate but too many in total", password: p12Password, wantErr: errPKCS12TooCostly,
			data: patchP12(t, modern, func(p *p12PFX, safes []p12ContentInfo) {
				p.MacData.Iterations = 400_000
				setSafeIterations(t, &safes[0], 400_000)
				setKeyIterations(t, &safes[1], 400_000)
			}),
		},
		{
			name: "MAC tried twice for an empty password", password: "", wantErr: errPKCS12TooCostly,
			data: patchP12(t, modern, func(p *p12PFX, _ []p12ContentInfo) { p.MacData.Iterations = 600_000 }),
		},
		{
			name: "Archive larger than 1 MiB", password: p12Password, wantErr: errPKCS12TooLarge,
			data: append(bytes.Clone(modern), make([]byte, maxPKCS12Size)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePKCS12(tt.data, tt.password)
			if got != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParsePKCS12 = %v, %v; want %v", got, err, tt.wantErr)
			}
			checkInvalid(t, err, tt.wantErr.Reason, tt.password, tt.data)
		})
	}
}

func TestParsePKCS12AcceptsRealWorldIterationCounts(t *testing.T) {
	m := testMaterial(t)
	tests := []struct {
		name     string
		encoder  *pkcs12.Encoder
		password string
	}{
		{"OpenSSL 1.x defaults: RC2-40 certificates, 3DES key", pkcs12.LegacyRC2, p12Password},
		{"3DES certificates and key", pkcs12.LegacyDES, p12Password},
		{"PBES2 with AES-256", pkcs12.Modern2023, p12Password},
		{"PBES2 with a PBMAC1 MAC", pkcs12.Modern2026, p12Password},
		{"10000 iterations per step, as Java keytool and Windows write", pkcs12.LegacyDES.WithIterations(10_000), p12Password},
		{"PBES2 with 100000 iterations per step", pkcs12.Modern2023.WithIterations(100_000), p12Password},
		{"Empty password", pkcs12.Modern2023, ""},
		{"No encryption and no MAC", pkcs12.Passwordless, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.encoder.Encode(m.rsaKey, m.rsaCert, []*x509.Certificate{m.caCert}, tt.password)
			fatalIf(t, err)
			got, err := ParsePKCS12(data, tt.password)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkCertificate(t, got, m.rsaCert, 2)
		})
	}
}

// A key inside an encrypted safe is decrypted by the check: with an ordinary
// count the archive parses, so only the count makes the difference.
func TestParsePKCS12ReadsAKeyInsideAnEncryptedSafe(t *testing.T) {
	m := testMaterial(t)
	data := hideKey(t, encodeP12(t, m.ecKey, m.ecCert, nil), 0)
	got, err := ParsePKCS12(data, p12Password)
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	checkCertificate(t, got, m.ecCert, 1)

	_, err = ParsePKCS12(data, "wrong-password")
	if !errors.Is(err, pkcs12.ErrIncorrectPassword) {
		t.Fatalf("error = %v, want the incorrect password error", err)
	}
}

// go-pkcs12 derives a key once for a count below 1; so must the check.
func TestParsePKCS12NegativeIterationCount(t *testing.T) {
	m := testMaterial(t)
	data, err := pkcs12.LegacyDES.Encode(m.ecKey, m.ecCert, nil, p12Password)
	fatalIf(t, err)
	data = patchP12(t, data, func(_ *p12PFX, safes []p12ContentInfo) { setSafeIterations(t, &safes[0], math.MinInt64) })
	got, err := ParsePKCS12(data, p12Password)
	var inv *InvalidError
	if got != nil || !errors.As(err, &inv) {
		t.Fatalf("ParsePKCS12 = %v, %v; want an *InvalidError", got, err)
	}
}

func TestPKCS12CostWithinBudget(t *testing.T) {
	m := testMaterial(t)
	// One step at OWASP's PBKDF2-SHA256 figure next to two default steps.
	data := patchP12(t, encodeP12(t, m.ecKey, m.ecCert, nil), func(p *p12PFX, _ []p12ContentInfo) { p.MacData.Iterations = 600_000 })
	if err := checkPKCS12Cost(data, p12Password); err != nil {
		t.Fatalf("checkPKCS12Cost = %v, want nil", err)
	}
}

func TestRC2Decrypt(t *testing.T) {
	// RFC 2268 section 5 vectors whose effective key length is 8*len(key).
	for _, tt := range []struct{ key, plain, cipher string }{
		{"ffffffffffffffff", "ffffffffffffffff", "278b27e42e2f0d49"},
		{"3000000000000000", "1000000000000001", "30649edf9be7d2c2"},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "2269552ab0f85ca6"},
	} {
		key, _ := hex.DecodeString(tt.key)
		ct, _ := hex.DecodeString(tt.cipher)
		var got [8]byte
		newRC2(key).Decrypt(got[:], ct)
		if hex.EncodeToString(got[:]) != tt.plain {
			t.Errorf("key %s: decrypt = %x, want %s", tt.key, got, tt.plain)
		}
	}
}

// patchP12 decodes a PFX, lets edit change it and encodes it again. The
// MAC is left as it was: the cost check runs before the MAC is verified.
func patchP12(t testing.TB, data []byte, edit func(*p12PFX, []p12ContentInfo)) []byte {
	t.Helper()
	pfx, safes := decodeP12Parts(t, data)
	edit(&pfx, safes)
	return encodeP12Parts(t, pfx, safes)
}

func decodeP12Parts(t testing.TB, data []byte) (p12PFX, []p12ContentInfo) {
	t.Helper()
	var pfx p12PFX
	fatalIf(t, unmarshalAll(data, &pfx))
	var authSafe []byte
	fatalIf(t, unmarshalAll(pfx.AuthSafe.Content.Bytes, &authSafe))
	var safes []p12ContentInfo
	fatalIf(t, unmarshalAll(authSafe, &safes))
	return pfx, safes
}

func encodeP12Parts(t testing.TB, pfx p12PFX, safes []p12ContentInfo) []byte {
	t.Helper()
	authSafe := mustMarshal(t, safes)
	pfx.AuthSafe.Content = explicit0(mustMarshal(t, authSafe))
	return mustMarshal(t, pfx)
}

func setSafeIterations(t testing.TB, safe *p12ContentInfo, n int) {
	t.Helper()
	var ed p12EncryptedData
	fatalIf(t, unmarshalAll(safe.Content.Bytes, &ed))
	ed.Info.Algorithm = withIterations(t, ed.Info.Algorithm, n)
	safe.Content = explicit0(mustMarshal(t, ed))
}

func setKeyIterations(t testing.TB, safe *p12ContentInfo, n int) {
	t.Helper()
	var content []byte
	fatalIf(t, unmarshalAll(safe.Content.Bytes, &content))
	bags := keyBagsWithIterations(t, content, n)
	safe.Content = explicit0(mustMarshal(t, mustMarshal(t, bags)))
}

// keyBagsWithIterations decodes SafeContents and, unless n is 0, sets the
// iteration count of its shrouded keys to n.
func keyBagsWithIterations(t testing.TB, safeContents []byte, n int) []p12SafeBag {
	t.Helper()
	var bags []p12SafeBag
	fatalIf(t, unmarshalAll(safeContents, &bags))
	for i := range bags {
		if bags[i].ID.Equal(oidP12ShroudedKeyBag) && n != 0 {
			var key p12EncryptedKey
			fatalIf(t, unmarshalAll(bags[i].Value.Bytes, &key))
			key.Algorithm = withIterations(t, key.Algorithm, n)
			bags[i].Value = explicit0(mustMarshal(t, key))
		}
	}
	return bags
}

func withIterations(t testing.TB, alg pkix.AlgorithmIdentifier, n int) pkix.AlgorithmIdentifier {
	t.Helper()
	if !alg.Algorithm.Equal(oidPBES2) {
		var params pbes1Params
		fatalIf(t, unmarshalAll(alg.Parameters.FullBytes, &params))
		params.Iterations = n
		alg.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, params)}
		return alg
	}
	var params pbes2Params
	fatalIf(t, unmarshalAll(alg.Parameters.FullBytes, &params))
	var kdf pbkdf2Params
	fatalIf(t, unmarshalAll(params.KDF.Parameters.FullBytes, &kdf))
	kdf.Iterations = n
	params.KDF.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, kdf)}
	alg.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, params)}
	return alg
}

// hideKey moves the shrouded key of a Modern2023 archive (certificates
// encrypted first, key second) into a second encrypted safe, sets the key's
// iteration count to n unless n is 0, and MACs the result with PBMAC1 so
// that go-pkcs12 would accept the archive.
func hideKey(t testing.TB, data []byte, n int) []byte {
	t.Helper()
	pfx, safes := decodeP12Parts(t, data)

	var content []byte
	fatalIf(t, unmarshalAll(safes[1].Content.Bytes, &content))
	plain := mustMarshal(t, keyBagsWithIterations(t, content, n))

	salt, iv := randomBytes(t, 16), randomBytes(t, aes.BlockSize)
	block, err := aes.NewCipher(pbkdf2Key(t, salt, 32))
	fatalIf(t, err)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	ciphertext := append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ciphertext, ciphertext)

	var ed p12EncryptedData
	ed.Info.ContentType = oidP12Data
	ed.Info.Algorithm = pkix.AlgorithmIdentifier{
		Algorithm: oidPBES2,
		Parameters: asn1.RawValue{FullBytes: mustMarshal(t, pbes2Params{
			KDF:    pbkdf2Alg(t, salt),
			Scheme: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: mustMarshal(t, iv)}},
		})},
	}
	ed.Info.EncryptedContent = ciphertext
	safes[1] = p12ContentInfo{ContentType: oidP12EncryptedData, Content: explicit0(mustMarshal(t, ed))}

	authSafe := mustMarshal(t, safes)
	macSalt := randomBytes(t, 16)
	mac := hmac.New(sha256.New, pbkdf2Key(t, macSalt, 32))
	mac.Write(authSafe)
	pfx.MacData = p12MacData{
		Mac: p12DigestInfo{
			Algorithm: pkix.AlgorithmIdentifier{
				Algorithm: oidPBMAC1,
				Parameters: asn1.RawValue{FullBytes: mustMarshal(t, pbmac1Params{
					KDF: pbkdf2Alg(t, macSalt),
					MAC: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256},
				})},
			},
			Digest: mac.Sum(nil),
		},
		MacSalt:    []byte{0},
		Iterations: 1,
	}
	return encodeP12Parts(t, pfx, safes)
}

// testKDFIterations is the count the test-built safe and MAC use.
const testKDFIterations = 2048

func pbkdf2Key(t testing.TB, salt []byte, n int) []byte {
	t.Helper()
	key, err := pbkdf2.Key(sha256.New, p12Password, salt, testKDFIterations, n)
	fatalIf(t, err)
	return key
}

func pbkdf2Alg(t testing.TB, salt []byte) pkix.AlgorithmIdentifier {
	t.Helper()
	return pkix.AlgorithmIdentifier{
		Algorithm: oidPBKDF2,
		Parameters: asn1.RawValue{FullBytes: mustMarshal(t, pbkdf2Params{
			Salt:       asn1.RawValue{FullBytes: mustMarshal(t, salt)},
			Iterations: testKDFIterations,
			KeyLength:  32,
			PRF:        pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256},
		})},
	}
}

// explicit0 wraps DER in the [0] EXPLICIT tag. A RawValue decoded under
// that tag holds the tag itself, so edited values are wrapped again.
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	der, err := asn1.Marshal(v)
	fatalIf(t, err)
	return der
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	fatalIf(t, err)
	return b
}
