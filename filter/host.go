package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// The host calls the filter makes. They are variables so that tests (Go mode)
// can make any of them fail or panic and check that every request still gets
// exactly one outcome.
var (
	getHeader     = requestHeader
	replaceHeader = proxywasm.ReplaceHttpRequestHeader
	removeHeader  = proxywasm.RemoveHttpRequestHeader
	addHeader     = proxywasm.AddHttpRequestHeader
	sendReply     = proxywasm.SendHttpResponse
	resume        = proxywasm.ResumeHttpRequest
	setEffective  = proxywasm.SetEffectiveContext
	dispatchCall  = proxywasm.DispatchHttpCall
	callHeaders   = proxywasm.GetHttpCallResponseHeaders
	callBody      = proxywasm.GetHttpCallResponseBody
	getShared     = proxywasm.GetSharedData
	setShared     = proxywasm.SetSharedData
	enqueue       = proxywasm.EnqueueSharedQueue
	dequeue       = proxywasm.DequeueSharedQueue
	setTick       = proxywasm.SetTickPeriodMilliSeconds
)
