package tokenrequest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// This file sorts last, so the test runs after every other test in the package
// and checks what they all produced.
func TestNoTokenSecretOrKeyTextInLogsEventsOrStatus(t *testing.T) {
	var events eventsv1.EventList
	if err := k8s.List(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	var trs v1.TokenRequestList
	if err := k8s.List(context.Background(), &trs); err != nil {
		t.Fatal(err)
	}
	eventsJSON, _ := json.Marshal(events)
	statuses := make([]v1.TokenRequestStatus, 0, len(trs.Items))
	for _, tr := range trs.Items {
		statuses = append(statuses, tr.Status)
	}
	statusJSON, _ := json.Marshal(statuses)
	outputs := map[string]string{"logs": logs.String(), "events": string(eventsJSON), "status": string(statusJSON)}
	if !strings.Contains(outputs["logs"], "secret written") || len(events.Items) == 0 || len(trs.Items) == 0 {
		t.Fatalf("nothing to check: run the whole package (logs %d bytes, %d events, %d TokenRequests)", len(outputs["logs"]), len(events.Items), len(trs.Items))
	}

	forbidden := map[string]string{}
	for i, tok := range sts.IssuedTokens() {
		forbidden["issued token "+itoa(i%600)] = tok
	}
	secretsUsed.Range(func(k, _ any) bool {
		forbidden["client secret"] = k.(string)
		for where, text := range outputs {
			if strings.Contains(text, k.(string)) {
				t.Errorf("a client secret appears in %s", where)
			}
		}
		return true
	})
	for _, key := range keysUsed {
		// Any line of a key's base64 body is enough to leak it.
		for _, line := range strings.Split(key, "\n")[1:3] {
			forbidden["private key"] = line
			for where, text := range outputs {
				if strings.Contains(text, line) {
					t.Errorf("private key text appears in %s", where)
				}
			}
		}
	}
	for what, value := range forbidden {
		for where, text := range outputs {
			if value != "" && strings.Contains(text, value) {
				t.Errorf("%s appears in %s", what, where)
			}
		}
	}
	if len(sts.IssuedTokens()) < 10 {
		t.Errorf("only %d tokens were issued during the run; the check saw too little", len(sts.IssuedTokens()))
	}
}
