package cors

import "testing"

func TestPreflight(t *testing.T) {
	tests := []struct {
		name                          string
		method, origin, requestMethod string
		want                          bool
	}{
		{"OPTIONS with Origin and Access-Control-Request-Method", "OPTIONS", "https://app.example", "POST", true},
		{"OPTIONS without Origin", "OPTIONS", "", "POST", false},
		{"OPTIONS without Access-Control-Request-Method", "OPTIONS", "https://app.example", "", false},
		{"OPTIONS with neither", "OPTIONS", "", "", false},
		{"GET with both", "GET", "https://app.example", "POST", false},
		{"lower-case method is another method", "options", "https://app.example", "POST", false},
	}
	for _, tt := range tests {
		if got := Preflight(tt.method, tt.origin, tt.requestMethod); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
