package resolve

import "testing"

func TestScopePatterns(t *testing.T) {
	cases := []struct {
		patterns, scopes []string
		refused          string
		ok               bool
	}{
		{nil, nil, "", true},
		{nil, []string{"anything"}, "", true},
		{[]string{"orders.read"}, []string{"orders.read"}, "", true},
		{[]string{"orders.read"}, []string{"orders.write"}, "orders.write", false},
		{[]string{"api://orders/*"}, []string{"api://orders/.default"}, "", true},
		{[]string{"api://orders/*"}, []string{"api://orders-admin/.default"}, "api://orders-admin/.default", false},
		{[]string{"*.read"}, []string{"orders.read", "billing.read"}, "", true},
		{[]string{"*.read"}, []string{"orders.read", "orders.readwrite"}, "orders.readwrite", false},
		{[]string{"a*b*c"}, []string{"abc", "aXbYc", "abbc"}, "", true},
		{[]string{"a*b*c"}, []string{"acb"}, "acb", false},
		{[]string{"*"}, []string{"x y"}, "", true},
		{[]string{"orders.*"}, nil, "", false}, // patterns set: a request for no scope is refused
	}
	for _, tc := range cases {
		refused, ok := firstScopeNotAllowed(tc.patterns, tc.scopes)
		if refused != tc.refused || ok != tc.ok {
			t.Errorf("patterns %q scopes %q: got (%q, %v), want (%q, %v)", tc.patterns, tc.scopes, refused, ok, tc.refused, tc.ok)
		}
	}
}
