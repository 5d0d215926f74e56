package tokenfile_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"

	"github.com/token-operator/token-operator/pkg/tokenfile"
)

func ExampleNew() {
	// In a pod, dir is the mount path of the Secret volume, such as
	// "/var/run/secrets/token". Here a temporary folder stands in for it.
	dir, err := os.MkdirTemp("", "token")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	for name, content := range map[string]string{
		"access_token": "example-token",
		"token_type":   "Bearer",
		"expires_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			log.Fatal(err)
		}
	}

	// An API that wants the token.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer example-token" {
			http.Error(w, "no valid token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello")
	}))
	defer api.Close()

	client := oauth2.NewClient(context.Background(), tokenfile.New(dir))
	resp, err := client.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}
