package claims

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/phantom-token/envoy-phantom-token/internal/testjwt"
)

func TestRead(t *testing.T) {
	long := strings.Repeat("a", MaxLength)
	set := gjson.Parse(`{"sub":"alice","n":42,"f":1.5e3,"t":true,"no":false,"null":null,` +
		`"roles":["admin","ops"],"mixed":["a",1],"emptyArr":[],"emptyStr":"","withEmpty":["a",""],` +
		`"addr":{"country":"SE","city":{"name":"Lund"}},"https://example.com/claims":{"tenant":"t1"},` +
		`"ctl":"a\nb","tab":"a\tb","del":"a\u007fb","long":"` + long + `","toolong":"` + long + `b",` +
		`"dup":"1","dup":"2","nested":{"dup":1,"dup":2},"utf8":"Ålesund","obj":{}}`)
	tests := []struct {
		name string
		path []string
		want Value
	}{
		{"string as it is", []string{"sub"}, Value{"alice", Present}},
		{"number as its JSON text", []string{"n"}, Value{"42", Present}},
		{"number as written", []string{"f"}, Value{"1.5e3", Present}},
		{"true", []string{"t"}, Value{"true", Present}},
		{"false", []string{"no"}, Value{"false", Present}},
		{"array of strings joined by spaces", []string{"roles"}, Value{"admin ops", Present}},
		{"nested by path", []string{"addr", "country"}, Value{"SE", Present}},
		{"deeper", []string{"addr", "city", "name"}, Value{"Lund", Present}},
		{"name with dots", []string{"https://example.com/claims", "tenant"}, Value{"t1", Present}},
		{"non-ASCII kept", []string{"utf8"}, Value{"Ålesund", Present}},
		{"at the length bound", []string{"long"}, Value{long, Present}},
		{"absent", []string{"nope"}, Value{}},
		{"absent nested", []string{"addr", "zip"}, Value{}},
		{"path through a string", []string{"sub", "x"}, Value{}},
		{"null", []string{"null"}, Value{State: Unusable}},
		{"object", []string{"obj"}, Value{State: Unusable}},
		{"array with a number", []string{"mixed"}, Value{State: Unusable}},
		{"empty array", []string{"emptyArr"}, Value{State: Unusable}},
		{"empty string", []string{"emptyStr"}, Value{State: Unusable}},
		{"array with an empty string", []string{"withEmpty"}, Value{State: Unusable}},
		{"line feed", []string{"ctl"}, Value{State: Unusable}},
		{"tab", []string{"tab"}, Value{State: Unusable}},
		{"DEL", []string{"del"}, Value{State: Unusable}},
		{"over the length bound", []string{"toolong"}, Value{State: Unusable}},
		{"duplicate member", []string{"dup"}, Value{State: Unusable}},
		{"duplicate nested member", []string{"nested", "dup"}, Value{State: Unusable}},
	}
	for _, tt := range tests {
		if got := Read(set, tt.path); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestFromJWT(t *testing.T) {
	plain := testjwt.Make(`{"sub":"alice","scope":"a b"}`)
	rfc9701 := testjwt.Make(`{"sub":"outer","token_introspection":{"active":true,"sub":"inner"}}`)
	paths := [][]string{{"sub"}, {"missing"}}
	if got := FromJWT(plain, paths); len(got) != 2 || got[0] != (Value{"alice", Present}) || got[1] != (Value{}) {
		t.Errorf("plain JWT: %+v", got)
	}
	if got := FromJWT(rfc9701, paths[:1]); got[0] != (Value{"inner", Present}) {
		t.Errorf("RFC 9701 claims come from token_introspection: %+v", got)
	}
	if got := FromJWT(plain, nil); got != nil {
		t.Errorf("no paths: %+v", got)
	}
}
