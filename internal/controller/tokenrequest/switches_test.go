package tokenrequest

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/resolve"
	"github.com/token-operator/token-operator/internal/secretdata"
)

// With restarts switched off, restart targets are refused before any API or
// token call, with a reason that names the flag; the rest is untouched.
// (Service account credentials switched off: internal/resolve.)
func TestSwitchedOffFeaturesAreRefusedWithTheirReason(t *testing.T) {
	r := &Reconciler{NoRolloutRestarts: true} // no client: any API call would panic
	tr := &v1.TokenRequest{Spec: v1.TokenRequestSpec{RolloutRestartTargets: []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "app"}}}}
	checkRefusal(t, r.checkRestarts(tr), v1.ReasonRolloutRestartsDisabled, "--enable-rollout-restarts=false")
	if err := r.checkRestarts(&v1.TokenRequest{}); err != nil {
		t.Errorf("a TokenRequest without restart targets is refused: %v", err)
	}
	if err := (&Reconciler{}).checkRestarts(tr); err != nil {
		t.Errorf("restarts refused with the feature on: %v", err)
	}
}

func checkRefusal(t *testing.T, err error, reason, flag string) {
	t.Helper()
	var ce *resolve.Refusal
	if !errors.As(err, &ce) || ce.Reason != reason || !strings.Contains(ce.Message, flag) {
		t.Errorf("got %v, want %s naming %s", err, reason, flag)
	}
}

// The refusals are Stalled and keep the last good token: Ready stays True
// while it is valid, and the pass asks to look again only at its expiry (or
// for a refused read, after permissionRecheck).
func TestARefusalIsStalledAndKeepsTheLastGoodToken(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, reason := range []string{v1.ReasonServiceAccountCredentialsDisabled, v1.ReasonRolloutRestartsDisabled, v1.ReasonPermissionDenied} {
		tr := &v1.TokenRequest{}
		tr.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonIssued}}
		o := observed{now: now, tr: tr, secretName: "out", credErr: &resolve.Refusal{Reason: reason, Message: "refused"},
			secret: &secretdata.State{HasToken: true, Intact: true, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}}
		p := decide(o)
		if p.action != actCredentialError || p.write != nil || p.call {
			t.Errorf("%s: plan %s, write %v, call %v", reason, p.action, p.write != nil, p.call)
		}
		want := now.Add(time.Hour) // the token's expiry
		if reason == v1.ReasonPermissionDenied {
			want = now.Add(permissionRecheck)
		}
		if !p.requeueAt.Equal(want) {
			t.Errorf("%s: looks again at %v, want %v", reason, p.requeueAt, want)
		}
		if !terminalFailure(p.status) || !isReadyStatus(p.status) {
			t.Errorf("%s: conditions %+v, want Stalled True and Ready True", reason, p.status.Conditions)
		}
	}
}

func isReadyStatus(st v1.TokenRequestStatus) bool {
	return isReady(&v1.TokenRequest{Status: st})
}

// A credential the operator may not read (403) is looked at again every
// permissionRecheck, since granting the right changes nothing it watches;
// the other refusals wait for a change.
func TestARefusedReadIsLookedAtAgainLater(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for reason, want := range map[string]time.Time{v1.ReasonPermissionDenied: now.Add(permissionRecheck), v1.ReasonServiceAccountCredentialsDisabled: {}} {
		o := observed{now: now, tr: &v1.TokenRequest{}, secretName: "out", credErr: &resolve.Refusal{Reason: reason, Message: "refused"}}
		if p := decide(o); !p.requeueAt.Equal(want) {
			t.Errorf("%s: looks again at %v, want %v", reason, p.requeueAt, want)
		}
	}
}
