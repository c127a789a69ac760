package istio
