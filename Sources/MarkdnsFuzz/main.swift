// libFuzzer entry point over the pure query-handling core (DNSWire, DNSCache, MarkPolicy).
// Build and run with scripts/fuzz.sh. Under --sanitize=fuzzer SwiftPM compiles this file as a
// library and libFuzzer supplies main(); a plain `swift build` compiles it too (there is no
// top-level code, so that binary does nothing): the target always compiles, and only the
// fuzz build is useful.
//
// The input is one DNS message as it would arrive from a client or an upstream. Every
// invariant violated stops the run through `require` (a crash libFuzzer records).

@_cdecl("LLVMFuzzerTestOneInput")
public func markdnsFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // Checked directly on libFuzzer's buffer (exactly `size` bytes): AddressSanitizer
    // reports any read past the end.
    let raw = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    WireInvariants.check(raw)
    QueryCoreInvariants.check(raw)
    AddressInvariants.check(raw)
    return 0
}
