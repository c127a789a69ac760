package pretty

import (
	"strings"
	"testing"
)

func TestUgly(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, ``},
		{` { "a" : [ 1 , 2 ] ,"b":{ } } `, `{"a":[1,2],"b":{}}`},
		{`{"a b":"c \" d"}`, `{"a b":"c \" d"}`},
		{"[\n\t1,\r\n 2 ]", `[1,2]`},
		{`"unclosed  string`, `"unclosed  string`},
		{`"\\" , 1`, `"\\",1`},
	} {
		if got := string(Ugly([]byte(c.in))); got != c.want {
			t.Errorf("Ugly(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPretty(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{}`, "{}\n"},
		{`[ ]`, "[]\n"},
		{`{"a":1}`, "{\n  \"a\": 1\n}\n"},
		{`{"a":[1,{"b":"x, y"}],"c":{}}`, "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x, y\"\n    }\n  ],\n  \"c\": {}\n}\n"},
		{`"s"`, "\"s\"\n"},
	} {
		if got := string(Pretty([]byte(c.in))); got != c.want {
			t.Errorf("Pretty(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := string(PrettyOptions([]byte(`[1,2]`), &Options{Prefix: "> ", Indent: "\t"}))
	if want := "> [\n> \t1,\n> \t2\n> ]\n"; got != want {
		t.Errorf("PrettyOptions with a prefix = %q, want %q", got, want)
	}
}

// A deep input is walked without recursion, and an unbalanced one does not
// underflow the indentation.
func TestDeepAndUnbalanced(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if got := Ugly([]byte(deep)); string(got) != deep {
		t.Error("Ugly changed a deep array")
	}
	// Pretty's output grows with the square of the depth (an indent per
	// level on every line): 1000 levels make 2 MB.
	deep = strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	if got := Ugly(Pretty([]byte(deep))); string(got) != deep {
		t.Error("Pretty lost part of a deep array")
	}
	if got := string(Pretty([]byte(`]]`))); got != "\n]\n]\n" {
		t.Errorf("Pretty(]]) = %q", got)
	}
}
