import MarkCore
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One DoH request on its own HTTP/2 stream: writes the request when the stream is
/// active, collects `:status`, `content-type` and the body, and reports the outcome once
/// (nil when the stream ends without a whole response).
final class DoHStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let request: DoHExchange.Request
    private let onResponse: (DoHExchange.Outcome?) -> Void
    private var status: String?
    private var contentType: String?
    private var body: [UInt8] = []
    private var reported = false

    init(request: DoHExchange.Request, onResponse: @escaping (DoHExchange.Outcome?) -> Void) {
        self.request = request
        self.onResponse = onResponse
    }

    func channelActive(context: ChannelHandlerContext) {
        let headers = HPACKHeaders(request.headers)
        let hasBody = !request.body.isEmpty
        context.write(wrapOutboundOut(.headers(.init(headers: headers, endStream: !hasBody))), promise: nil)
        if hasBody {
            var buffer = context.channel.allocator.buffer(capacity: request.body.count)
            buffer.writeBytes(request.body)
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(buffer), endStream: true))), promise: nil)
        }
        context.flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let h):
            if status == nil {
                status = h.headers.first(name: ":status")
                contentType = h.headers.first(name: "content-type")
            }
            if h.endStream { finish(context) }
        case .data(let d):
            if case .byteBuffer(let b) = d.data {
                guard body.count + b.readableBytes <= 65535 else {
                    report(.httpError("a DoH answer over 65535 bytes"))
                    context.close(promise: nil)
                    return
                }
                body.append(contentsOf: b.readableBytesView)
            }
            if d.endStream { finish(context) }
        default:
            break
        }
    }

    private func finish(_ context: ChannelHandlerContext) {
        report(DoHExchange.outcome(status: status, contentType: contentType, body: body))
        context.close(promise: nil)
    }

    private func report(_ outcome: DoHExchange.Outcome?) {
        guard !reported else { return }
        reported = true
        onResponse(outcome)
    }

    func channelInactive(context: ChannelHandlerContext) {
        report(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        report(nil)
        context.close(promise: nil)
    }
}
