package istio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// The CRDs the manifests and the route examples are checked against: the
// file of istio.io/api that Istio's charts install, and the standard channel
// of the Gateway API module that Istio builds on.
var crdSources = []struct {
	module, file string
	kinds        []string // the kinds taken from the file
}{
	{"istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml", []string{"WasmPlugin", "TrafficExtension", "VirtualService"}},
	{"sigs.k8s.io/gateway-api", "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml", []string{"HTTPRoute"}},
}

// servedKind is one served version of a CRD, with what kube-apiserver builds
// from its schema to check objects on create.
type servedKind struct {
	gvk        schema.GroupVersionKind
	structural *structuralschema.Structural
	strategy   interface {
		Validate(context.Context, runtime.Object) field.ErrorList
	}
}

// loadCRDs reads the CRDs of crdSources from the modules this module
// requires, keyed by apiVersion and kind.
func loadCRDs(t *testing.T) map[schema.GroupVersionKind]*servedKind {
	t.Helper()
	kinds := map[schema.GroupVersionKind]*servedKind{}
	for _, src := range crdSources {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", src.module).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v (run `go mod download` in istio/)", src.module, err)
		}
		version, dir, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
		if !ok || dir == "" {
			t.Fatalf("%s is not in the module cache (go list said %q): run `go mod download` in istio/", src.module, out)
		}
		data, err := os.ReadFile(filepath.Join(dir, src.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---\n")) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(doc, &crd); err != nil {
				t.Fatalf("%s %s %s: %v", src.module, version, src.file, err)
			}
			if !slices.Contains(src.kinds, crd.Spec.Names.Kind) {
				continue
			}
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				k, err := newServedKind(&crd, v)
				if err != nil {
					t.Fatalf("%s %s, CRD %s version %s: %v", src.module, version, crd.Name, v.Name, err)
				}
				kinds[k.gvk] = k
			}
		}
		served := map[string]bool{}
		for gvk := range kinds {
			served[gvk.Kind] = true
		}
		for _, kind := range src.kinds {
			if !served[kind] {
				t.Fatalf("%s %s serves no %s", src.module, version, kind)
			}
		}
		t.Logf("CRD schemas of %s %s", src.module, version)
	}
	return kinds
}

// newServedKind builds, for one version of a CRD, what kube-apiserver's
// customresource handler builds: the structural schema (pruning, metadata
// coercion), the OpenAPI schema validator and the create strategy, which runs
// that validator, the list-type checks and the x-kubernetes-validations (CEL).
func newServedKind(crd *apiextensionsv1.CustomResourceDefinition, v apiextensionsv1.CustomResourceDefinitionVersion) (*servedKind, error) {
	if v.Schema == nil {
		return nil, errors.New("no schema")
	}
	var internal apiextensions.CustomResourceValidation
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v.Schema, &internal, nil); err != nil {
		return nil, err
	}
	structural, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, err
	}
	if errs := structuralschema.ValidateStructural(nil, structural); len(errs) > 0 {
		return nil, fmt.Errorf("not a structural schema: %v", errs.ToAggregate())
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, err
	}
	gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
	strategy := customresource.NewStrategy(nil, crd.Spec.Scope == apiextensionsv1.NamespaceScoped, gvk,
		validator, nil, structural, nil, nil, v.SelectableFields)
	return &servedKind{gvk: gvk, structural: structural, strategy: strategy}, nil
}

// validateCreate checks an object (YAML) as kube-apiserver does on create with
// strict field validation, kubectl's default: duplicate and unknown fields are
// errors, then the schema, list types and CEL rules.
func validateCreate(kinds map[schema.GroupVersionKind]*servedKind, doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("strict decoding error: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil { // whole numbers as int64, as kube-apiserver decodes them for CEL
		return err
	}
	k := kinds[u.GroupVersionKind()]
	if k == nil {
		return fmt.Errorf("no matches for kind %q in version %q", u.GetKind(), u.GetAPIVersion())
	}
	return k.validate(u)
}

func (k *servedKind) validate(u *unstructured.Unstructured) error {
	_, _, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u.Object, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return err
	}
	unknown = append(unknown, structuralpruning.PruneWithOptions(u.Object, k.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, k.structural)
	ferr, paths := schemaobjectmeta.CoerceWithOptions(nil, u.Object, k.structural, false,
		schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	if ferr != nil {
		return ferr
	}
	unknown = append(unknown, paths...)
	if len(unknown) > 0 {
		quoted := make([]string, len(unknown))
		for i, p := range unknown {
			quoted[i] = fmt.Sprintf("unknown field %q", p)
		}
		return fmt.Errorf("strict decoding error: %s", strings.Join(quoted, ", "))
	}
	structuraldefaulting.Default(u.Object, k.structural)
	if errs := k.strategy.Validate(context.Background(), u); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
