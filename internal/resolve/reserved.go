package resolve

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
)

// reservation is a credential's reserved-for annotation, parsed. Without
// the annotation anyone who may name the credential may use it.
type reservation struct {
	present bool
	// issuers are the well-formed entries: "TokenIssuer/<name>" or "ClusterTokenIssuer/<name>".
	issuers []string
	// malformed counts entries that name no issuer; they allow nothing.
	malformed int
}

func reservationOf(annotations map[string]string) reservation {
	value, ok := annotations[v1.AnnotationReservedFor]
	if !ok {
		return reservation{}
	}
	res := reservation{present: true}
	for _, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if wellFormedIssuerRef(entry) {
			res.issuers = append(res.issuers, entry)
		} else {
			res.malformed++
		}
	}
	return res
}

func wellFormedIssuerRef(entry string) bool {
	kind, name, ok := strings.Cut(entry, "/")
	if !ok || (kind != v1.KindTokenIssuer && kind != v1.KindClusterTokenIssuer) {
		return false
	}
	return len(validation.IsDNS1123Subdomain(name)) == 0
}

// check refuses from unless the reservation names its issuer. The refusal
// stays CredentialNotAllowed through an issuer: the TokenRequest's owner
// chose an issuer that may not use the credential.
func (res reservation) check(from Source, src credentialSource) error {
	if !res.present || (from.ref != "" && slices.Contains(res.issuers, from.ref)) {
		return nil
	}
	allowed := "no issuer"
	if len(res.issuers) > 0 {
		allowed = strings.Join(res.issuers, ", ")
	}
	if res.malformed > 0 {
		allowed += fmt.Sprintf(" (and %d entries that are not TokenIssuer/<name> or ClusterTokenIssuer/<name>)", res.malformed)
	}
	who := "a TokenRequest's own spec.credential"
	if from.ref != "" {
		who = from.ref
	}
	return &Refusal{Reason: v1.ReasonCredentialNotAllowed, direct: true, Message: fmt.Sprintf(
		"%s %q is reserved by its annotation %s for %s; %s may not use it",
		src.kind, src.name, v1.AnnotationReservedFor, allowed, who)}
}
