//go:build wasip1

package abi

import (
	"errors"
	"math"
	"strconv"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The proxy-wasm ABI 0.2 host functions the filter uses (Envoy's names and
// signatures). Values the host returns are in memory it asked the module to
// allocate (proxy_on_memory_allocate): the module owns them.

//go:wasmimport env proxy_log
//go:noescape
func proxyLog(level uint32, msg *byte, size int32) uint32

//go:wasmimport env proxy_get_buffer_bytes
//go:noescape
func proxyGetBufferBytes(bufferType uint32, start, maxSize int32, data unsafe.Pointer, size *int32) uint32

//go:wasmimport env proxy_get_header_map_value
//go:noescape
func proxyGetHeaderMapValue(mapType uint32, key *byte, keySize int32, value unsafe.Pointer, valueSize *int32) uint32

//go:wasmimport env proxy_get_header_map_pairs
//go:noescape
func proxyGetHeaderMapPairs(mapType uint32, data unsafe.Pointer, size *int32) uint32

//go:wasmimport env proxy_replace_header_map_value
//go:noescape
func proxyReplaceHeaderMapValue(mapType uint32, key *byte, keySize int32, value *byte, valueSize int32) uint32

//go:wasmimport env proxy_remove_header_map_value
//go:noescape
func proxyRemoveHeaderMapValue(mapType uint32, key *byte, keySize int32) uint32

//go:wasmimport env proxy_add_header_map_value
//go:noescape
func proxyAddHeaderMapValue(mapType uint32, key *byte, keySize int32, value *byte, valueSize int32) uint32

//go:wasmimport env proxy_send_local_response
//go:noescape
func proxySendLocalResponse(status uint32, details *byte, detailsSize int32, body *byte, bodySize int32, headers *byte, headersSize int32, grpcStatus int32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(streamType uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_http_call
//go:noescape
func proxyHttpCall(cluster *byte, clusterSize int32, headers *byte, headersSize int32, body *byte, bodySize int32, trailers *byte, trailersSize int32, timeout uint32, calloutID *uint32) uint32

//go:wasmimport env proxy_call_foreign_function
//go:noescape
func proxyCallForeignFunction(name *byte, nameSize int32, param *byte, paramSize int32, ret unsafe.Pointer, retSize *int32) uint32

//go:wasmimport env proxy_get_shared_data
//go:noescape
func proxyGetSharedData(key *byte, keySize int32, value unsafe.Pointer, valueSize *int32, cas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
//go:noescape
func proxySetSharedData(key *byte, keySize int32, value *byte, valueSize int32, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
//go:noescape
func proxyRegisterSharedQueue(name *byte, nameSize int32, id *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
//go:noescape
func proxyEnqueueSharedQueue(id uint32, value *byte, valueSize int32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
//go:noescape
func proxyDequeueSharedQueue(id uint32, value unsafe.Pointer, valueSize *int32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(ms uint32) uint32

// The ABI's enumerations the filter uses.
const (
	mapRequestHeaders      = 0
	mapCallResponseHeaders = 6

	bufferCallResponseBody    = 4
	bufferPluginConfiguration = 7

	streamRequest = 0

	logDebug    = 1
	logInfo     = 2
	logWarn     = 3
	logError    = 4
	logCritical = 5
)

// statusError is the error of an ABI status, the SDK's for those it names.
func statusError(st uint32) error {
	if st == 0 {
		return nil
	}
	return failed(st)
}

// failed is the error of a status other than OK.
func failed(st uint32) error {
	switch st {
	case 1:
		return types.ErrorStatusNotFound
	case 2:
		return types.ErrorStatusBadArgument
	case 7:
		return types.ErrorStatusEmpty
	case 8:
		return types.ErrorStatusCasMismatch
	case 10:
		return types.ErrorInternalFailure
	case 12:
		return types.ErrorUnimplemented
	}
	return errors.New("error status returned by host: " + strconv.Itoa(int(st)))
}

// The out-parameters of the host calls, global so that they do not escape to
// the heap on each call (the module runs one callback at a time).
var (
	outData *byte
	outSize int32
	outCAS  uint32
	outID   uint32
)

// out is the value a host call returned in outData and outSize.
func out() []byte {
	if outData == nil {
		return nil
	}
	return unsafe.Slice(outData, outSize)
}

func stringData(s string) *byte { return unsafe.StringData(s) }

func bytesData(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func logAt(level uint32, msg string) { proxyLog(level, stringData(msg), int32(len(msg))) }

func LogDebug(msg string)    { logAt(logDebug, msg) }
func LogInfo(msg string)     { logAt(logInfo, msg) }
func LogWarn(msg string)     { logAt(logWarn, msg) }
func LogError(msg string)    { logAt(logError, msg) }
func LogCritical(msg string) { logAt(logCritical, msg) }

// GetPluginConfiguration is the plugin's configuration (only during
// OnPluginStart); ErrorStatusNotFound when there is none.
func GetPluginConfiguration() ([]byte, error) {
	return buffer(bufferPluginConfiguration, 0, math.MaxInt32)
}

// GetHttpCallResponseBody is up to maxSize bytes of a call's answer from
// start (only during its callback).
func GetHttpCallResponseBody(start, maxSize int) ([]byte, error) {
	return buffer(bufferCallResponseBody, start, maxSize)
}

func buffer(kind uint32, start, maxSize int) ([]byte, error) {
	outData, outSize = nil, 0
	if st := proxyGetBufferBytes(kind, int32(start), int32(maxSize), unsafe.Pointer(&outData), &outSize); st != 0 {
		return nil, statusError(st)
	}
	if outData == nil {
		return nil, types.ErrorStatusNotFound
	}
	return out(), nil
}

// GetHttpRequestHeader reads one request header. A short value is in
// memory shared with other values (see onMemoryAllocate): a caller that
// keeps it past the request's callback keeps a copy.
func GetHttpRequestHeader(name string) (string, error) {
	outData, outSize = nil, 0
	headerValue = true
	st := proxyGetHeaderMapValue(mapRequestHeaders, stringData(name), int32(len(name)), unsafe.Pointer(&outData), &outSize)
	headerValue = false
	if st != 0 {
		return "", statusError(st)
	}
	return unsafe.String(outData, outSize), nil
}

// GetHttpRequestHeaders reads every request header.
func GetHttpRequestHeaders() ([][2]string, error) { return pairs(mapRequestHeaders) }

// GetHttpCallResponseHeaders reads a call's answer's headers (only during
// its callback).
func GetHttpCallResponseHeaders() ([][2]string, error) { return pairs(mapCallResponseHeaders) }

func pairs(mapType uint32) ([][2]string, error) {
	outData, outSize = nil, 0
	if st := proxyGetHeaderMapPairs(mapType, unsafe.Pointer(&outData), &outSize); st != 0 {
		return nil, statusError(st)
	}
	if outData == nil {
		return nil, types.ErrorStatusNotFound
	}
	return decodePairs(out())
}

func ReplaceHttpRequestHeader(name, value string) error {
	return statusError(proxyReplaceHeaderMapValue(mapRequestHeaders, stringData(name), int32(len(name)), stringData(value), int32(len(value))))
}

func RemoveHttpRequestHeader(name string) error {
	return statusError(proxyRemoveHeaderMapValue(mapRequestHeaders, stringData(name), int32(len(name))))
}

func AddHttpRequestHeader(name, value string) error {
	return statusError(proxyAddHeaderMapValue(mapRequestHeaders, stringData(name), int32(len(name)), stringData(value), int32(len(value))))
}

// SendHttpResponse answers the current request locally.
func SendHttpResponse(status uint32, headers [][2]string, body []byte, grpcStatus int32) error {
	h := encodePairs(headers)
	return statusError(proxySendLocalResponse(status, nil, 0, bytesData(body), int32(len(body)), bytesData(h), int32(len(h)), grpcStatus))
}

// ResumeHttpRequest lets the current request go on.
func ResumeHttpRequest() error { return statusError(proxyContinueStream(streamRequest)) }

// SetEffectiveContext makes the host calls that follow act on a request.
func SetEffectiveContext(id uint32) error { return statusError(proxySetEffectiveContext(id)) }

// DispatchHttpCall makes an HTTP call to a cluster; done is called with its
// answer, on the plugin context whose callback made the call.
func DispatchHttpCall(cluster string, headers [][2]string, body []byte, trailers [][2]string, timeoutMillis uint32, done func(numHeaders, bodySize, numTrailers int)) (uint32, error) {
	r := running
	if r == nil {
		return 0, errors.New("an HTTP call made outside a plugin context's callback")
	}
	h, t := encodePairs(headers), encodePairs(trailers)
	outID = 0
	if st := proxyHttpCall(stringData(cluster), int32(len(cluster)), bytesData(h), int32(len(h)), bytesData(body), int32(len(body)), bytesData(t), int32(len(t)), timeoutMillis, &outID); st != 0 {
		return 0, statusError(st)
	}
	r.calls[outID] = done
	return outID, nil
}

// CallForeignFunction calls one of the host's own functions.
func CallForeignFunction(name string, param []byte) ([]byte, error) {
	outData, outSize = nil, 0
	if st := proxyCallForeignFunction(stringData(name), int32(len(name)), bytesData(param), int32(len(param)), unsafe.Pointer(&outData), &outSize); st != 0 {
		return nil, statusError(st)
	}
	return out(), nil
}

// GetSharedData reads a key of the VMs' shared data, with its CAS.
func GetSharedData(key string) ([]byte, uint32, error) {
	outData, outSize, outCAS = nil, 0, 0
	if st := proxyGetSharedData(stringData(key), int32(len(key)), unsafe.Pointer(&outData), &outSize, &outCAS); st != 0 {
		return nil, 0, statusError(st)
	}
	return out(), outCAS, nil
}

// SetSharedData writes a key of the shared data if its CAS is still cas (0:
// whatever it is).
func SetSharedData(key string, value []byte, cas uint32) error {
	return statusError(proxySetSharedData(stringData(key), int32(len(key)), bytesData(value), int32(len(value)), cas))
}

// RegisterSharedQueue registers a queue that wakes the current plugin
// context.
func RegisterSharedQueue(name string) (uint32, error) {
	outID = 0
	if st := proxyRegisterSharedQueue(stringData(name), int32(len(name)), &outID); st != 0 {
		return 0, statusError(st)
	}
	return outID, nil
}

func EnqueueSharedQueue(id uint32, value []byte) error {
	return statusError(proxyEnqueueSharedQueue(id, bytesData(value), int32(len(value))))
}

func DequeueSharedQueue(id uint32) ([]byte, error) {
	outData, outSize = nil, 0
	if st := proxyDequeueSharedQueue(id, unsafe.Pointer(&outData), &outSize); st != 0 {
		return nil, statusError(st)
	}
	return out(), nil
}

func SetTickPeriodMilliSeconds(ms uint32) error {
	return statusError(proxySetTickPeriodMilliseconds(ms))
}
