package install_test

import (
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// TestChartSchema: values.schema.json accepts the default and all-on values
// and refuses misspelt keys and values of the wrong type or outside an enum.
func TestChartSchema(t *testing.T) {
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Schema) == 0 {
		t.Fatal("the chart has no values.schema.json")
	}
	validate := func(values map[string]any) error {
		vals, err := chartutil.ToRenderValues(ch, values, common.ReleaseOptions{Name: "token-operator", Namespace: "token-operator-system", IsInstall: true}, common.DefaultCapabilities)
		if err != nil {
			return err
		}
		v, _ := vals.Table("Values")
		return chartutil.ValidateAgainstSchema(ch, v)
	}
	for name, values := range map[string]map[string]any{"default values": nil, "all options on": allOnValues(t)} {
		if err := validate(values); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, values := range map[string]map[string]any{
		"unknown key":            {"replicas": 2},
		"pull policy":            {"image": map[string]any{"pullPolicy": "Sometimes"}},
		"digest":                 {"image": map[string]any{"digest": "latest"}},
		"replica count type":     {"replicaCount": "two"},
		"duration":               {"tokenRequestTimeout": "30 seconds"},
		"whenUnsatisfiable":      {"topologySpreadConstraints": []any{map[string]any{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "Never"}}},
		"network policy port":    {"networkPolicy": map[string]any{"tokenServices": map[string]any{"ports": []any{"https"}}}},
		"extraEnv without name":  {"extraEnv": []any{map[string]any{"value": "x"}}},
		"budget enabled type":    {"podDisruptionBudget": map[string]any{"enabled": "yes"}},
		"prometheusRule unknown": {"prometheusRule": map[string]any{"enable": true}},
		"strategy type":          {"strategy": map[string]any{"type": "Sometimes"}},
		"revisionHistoryLimit":   {"revisionHistoryLimit": -1},
		"probe unknown key":      {"livenessProbe": map[string]any{"path": "/other"}},
		"probe period 0":         {"readinessProbe": map[string]any{"periodSeconds": 0}},
		"maxUnavailable":         {"podDisruptionBudget": map[string]any{"maxUnavailable": "half"}},
		"lease name":             {"leaderElection": map[string]any{"leaseName": "Token_Operator"}},
		"automount type":         {"serviceAccount": map[string]any{"automountServiceAccountToken": "no"}},
		"commonLabels value":     {"commonLabels": map[string]any{"team": 1}},
		"rbac unknown key":       {"rbac": map[string]any{"enabled": false}},
	} {
		if err := validate(values); err == nil {
			t.Errorf("%s: the schema accepts %v", name, values)
		}
	}
}
