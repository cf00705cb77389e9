import MarkCore
import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#endif

/// Right after the TLS handler: when the handshake (with NIOSSL's chain and name checks)
/// completes, checks the SPKI pins and, for DoH, that HTTP/2 was negotiated, and only then
/// says the connection is ready; a failed handshake is told in words. Nothing of ours is
/// written before `ready`.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let upstream: StreamUpstream
    private let note: VerificationNote
    private let onReady: (ChannelHandlerContext) -> Void
    private let onFailure: (TLSFailure) -> Void
    private var done = false
    /// The handshake finished or failed.
    var isDone: Bool { done }

    init(upstream: StreamUpstream, note: VerificationNote, onReady: @escaping (ChannelHandlerContext) -> Void,
         onFailure: @escaping (TLSFailure) -> Void) {
        self.upstream = upstream; self.note = note; self.onReady = onReady; self.onFailure = onFailure
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let proto) = tls, !done {
            done = true
            if let failure = check(context, negotiated: proto) {
                onFailure(failure)
                context.close(promise: nil)
                return
            }
            onReady(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func check(_ context: ChannelHandlerContext, negotiated: String?) -> TLSFailure? {
        if upstream.isHTTPS, negotiated != "h2" {
            return TLSFailure(cause: .noHTTP2, words: "the server did not agree to HTTP/2 (ALPN h2), which DoH needs here")
        }
        let peer = (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self))?.peerCertificate
        if let name = upstream.serverName {
            // NIOSSL also accepts a certificate whose IP entry is the connected address; a
            // name given in the upstream must itself be in the certificate. (NIOSSL's own
            // subjectAltName reader, public but underscored; its hostname check uses it.)
            var dnsNames: [[UInt8]] = []
            if let sans = peer?._subjectAlternativeNames() {
                for san in sans where san.nameType == .dnsName { dnsNames.append(Array(san.contents)) }
            }
            guard CertificateName.matches(name, dnsNames: dnsNames) else {
                return TLSFailure(cause: .wrongName, words: "the certificate is not for \(name) (wrong name)")
            }
        }
        guard !upstream.pins.isEmpty else { return nil }
        guard let spki = try? peer?.extractPublicKey().toSPKIBytes()
        else { return TLSFailure(cause: .pinMismatch, words: "no server public key to check the pins against (pin mismatch)") }
        let digest = SPKIDigest.sha256(spki)
        guard SPKIPin.matches(digest: digest, pins: upstream.pins) else {
            return TLSFailure(cause: .pinMismatch, words: "the server's key \(SPKIPin.text(digest)) matches none of the pins (pin mismatch)")
        }
        return nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            onFailure(TLSFailure.handshake(error, verified: note.cause, upstream: upstream.description,
                                           name: upstream.serverName))
        }
        context.close(promise: nil)
    }
}

extension NIOSSLClientHandler {
    /// The client handler for `upstream`: SNI and the name check for its name (or the
    /// address check without one), and a note of why a chain failed, for the log.
    @available(*, deprecated, message: "NIOSSLVerificationCallback is the one way to learn which check of the chain failed")
    static func make(context: NIOSSLContext, upstream: StreamUpstream, note: VerificationNote) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: upstream.serverName, verificationCallback: { result, certificate in
            if result == .failed, note.cause == nil {
                let now = time(nil)
                note.cause = certificate.notValidAfter < now ? .expired : certificate.notValidBefore > now ? .notYetValid : .unknownCA
            }
            return result
        })
    }
}
