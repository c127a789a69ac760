//go:build !wasip1

package abi

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// SetVMContext gives the SDK the VM context whose contexts the host drives.
func SetVMContext(vm types.VMContext) { proxywasm.SetVMContext(vm) }

// The host calls, as the SDK makes them.
var (
	LogDebug    = proxywasm.LogDebug
	LogInfo     = proxywasm.LogInfo
	LogWarn     = proxywasm.LogWarn
	LogError    = proxywasm.LogError
	LogCritical = proxywasm.LogCritical

	GetPluginConfiguration     = proxywasm.GetPluginConfiguration
	GetHttpRequestHeader       = proxywasm.GetHttpRequestHeader
	GetHttpRequestHeaders      = proxywasm.GetHttpRequestHeaders
	ReplaceHttpRequestHeader   = proxywasm.ReplaceHttpRequestHeader
	RemoveHttpRequestHeader    = proxywasm.RemoveHttpRequestHeader
	AddHttpRequestHeader       = proxywasm.AddHttpRequestHeader
	SendHttpResponse           = proxywasm.SendHttpResponse
	ResumeHttpRequest          = proxywasm.ResumeHttpRequest
	SetEffectiveContext        = proxywasm.SetEffectiveContext
	DispatchHttpCall           = proxywasm.DispatchHttpCall
	GetHttpCallResponseHeaders = proxywasm.GetHttpCallResponseHeaders
	GetHttpCallResponseBody    = proxywasm.GetHttpCallResponseBody
	CallForeignFunction        = proxywasm.CallForeignFunction
	GetSharedData              = proxywasm.GetSharedData
	SetSharedData              = proxywasm.SetSharedData
	RegisterSharedQueue        = proxywasm.RegisterSharedQueue
	EnqueueSharedQueue         = proxywasm.EnqueueSharedQueue
	DequeueSharedQueue         = proxywasm.DequeueSharedQueue
	SetTickPeriodMilliSeconds  = proxywasm.SetTickPeriodMilliSeconds
)
