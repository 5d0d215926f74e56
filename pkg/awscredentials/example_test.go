package awscredentials_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/token-operator/token-operator/pkg/awscredentials"
)

func ExampleNew() {
	// In a pod, dir is the mount path of the Secret volume, such as
	// "/var/run/secrets/aws". Here a temporary folder stands in for it.
	dir, err := os.MkdirTemp("", "aws")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	expiration := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	err = os.WriteFile(filepath.Join(dir, "credential_process.json"), []byte(`{"Version":1,
		"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"example-secret","SessionToken":"example-session",
		"Expiration":"`+expiration+`"}`), 0o600)
	if err != nil {
		log.Fatal(err)
	}

	// With the SDK's configuration loader, the provider goes in as
	// config.WithCredentialsProvider(awscredentials.New(dir)); here the
	// credentials sign a request directly. The cache asks the provider
	// again five minutes before the credentials expire.
	cfg := aws.Config{Region: "us-east-1"}
	cfg.Credentials = aws.NewCredentialsCache(awscredentials.New(dir), func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = 5 * time.Minute
	})

	ctx := context.Background()
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", nil)
	if err != nil {
		log.Fatal(err)
	}
	const emptyBody = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyBody, "sts", cfg.Region, time.Now()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Fields(req.Header.Get("Authorization"))[1][:len("Credential=ASIAEXAMPLE")])
	fmt.Println(req.Header.Get("X-Amz-Security-Token"))
	// Output:
	// Credential=ASIAEXAMPLE
	// example-session
}
