import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// `ANY /run/NAME[/subpath][?query]`: turns an HTTP request into an `Invocation` and the result back into HTTP.
final class RunHandler: Sendable {
    let manager: LambdaManager
    let workerID: String
    let maxBodyBytes: Int
    private let counter = Atomic<UInt64>(0)

    /// Fields every invocation response carries, validated once: CORS and the worker id.
    private let constantFields: [HTTPField]

    init(manager: LambdaManager, workerID: String, maxBodyBytes: Int) {
        self.manager = manager
        self.workerID = workerID
        self.maxBodyBytes = maxBodyBytes
        self.constantFields = [HTTPField(name: SwiftletHeader.worker, value: workerID)] + Self.corsFields
    }

    static let defaultMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    static let coldField = HTTPField(name: SwiftletHeader.start, value: "cold")
    static let warmField = HTTPField(name: SwiftletHeader.start, value: "warm")
    /// Response headers only the worker sets.
    static let workerFieldNames: Set<HTTPField.Name> = [
        SwiftletHeader.requestID, SwiftletHeader.start, SwiftletHeader.initMs, SwiftletHeader.runMs,
        SwiftletHeader.billedMs, SwiftletHeader.memoryMB, SwiftletHeader.sandbox, SwiftletHeader.worker,
        .accessControlAllowOrigin, .accessControlExposeHeaders,
    ]
    /// `Access-Control-Expose-Headers: *` lets pages read every response header, the worker's and the handler's alike;
    /// the wildcard holds for requests without credentials, which `Allow-Origin: *` implies (Fetch standard, CORS
    /// protocol). One short field instead of a list keeps every response small.
    static let corsFields = [
        HTTPField(name: .accessControlAllowOrigin, value: "*"),
        HTTPField(name: .accessControlExposeHeaders, value: "*"),
    ]

    nonisolated(nonsending) func handle(_ request: Request, path: Substring) async -> Response {
        let requestID = "\(workerID)-\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
        // path is "NAME" or "NAME/sub/path"
        let name: String
        let subpath: String
        if let slash = path.firstIndex(of: "/") {
            name = String(path[..<slash])
            subpath = String(path[slash...])
        } else {
            name = String(path)
            subpath = "/"
        }
        let decodedName = name.utf8.contains(UInt8(ascii: "%")) ? (name.removingPercentEncoding ?? name) : name
        if request.method == .options {
            return preflight(request, lambda: decodedName, requestID: requestID)
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
            return errorResponse(.bodyTooLarge(limit: maxBodyBytes), lambda: decodedName, requestID: requestID)
        }
        let body: ByteBuffer
        if Self.hasNoBody(request) {
            body = ByteBuffer()  // nothing to read (the server drains the request's end itself)
        } else {
            do {
                body = try await request.body.collect(upTo: maxBodyBytes)
            } catch {
                return errorResponse(.bodyTooLarge(limit: maxBodyBytes), lambda: decodedName, requestID: requestID)
            }
        }
        var headers: [[String]] = []
        headers.reserveCapacity(request.headers.count)
        for field in request.headers { headers.append([field.name.canonicalName, field.value]) }
        let invocation = Invocation(
            requestID: requestID, lambda: decodedName, method: request.method.rawValue, path: subpath,
            query: request.uri.query ?? "", headers: headers, body: body)
        do {
            let result = try await manager.invoke(invocation)
            return success(result, lambda: decodedName, requestID: requestID)
        } catch let error as InvocationError {
            return errorResponse(error, lambda: decodedName, requestID: requestID)
        } catch {
            return errorJSON(status: 500, message: "\(error)", lambda: decodedName, requestID: requestID)
        }
    }

    /// An HTTP/1.1 request without Content-Length and Transfer-Encoding, or with Content-Length 0, has no body
    /// (RFC 9112, section 6.3).
    static func hasNoBody(_ request: Request) -> Bool {
        guard request.headers[.transferEncoding] == nil else { return false }
        guard let length = request.headers[.contentLength] else { return true }
        return length == "0"
    }

    private func success(_ result: InvocationResult, lambda: String, requestID: String) -> Response {
        let response = result.response
        var fields = HTTPFields()
        fields.reserveCapacity(response.headers.count + 10)
        var body = response.body
        var status = response.status
        if let error = response.error {
            var object: [String: Any] = ["error": error.message, "lambda": lambda, "request_id": requestID, "kind": error.kind]
            if let traceback = error.traceback { object["traceback"] = traceback }
            body = ByteBuffer(bytes: Self.json(object))
            fields[.contentType] = "application/json"
            if !(400...599).contains(status) { status = 500 }
        } else {
            for pair in response.headers where pair.count == 2 {
                guard let name = HTTPField.Name(pair[0]) else { continue }
                if name == .contentLength || name == .transferEncoding || name == .connection { continue }
                fields.append(HTTPField(name: name, value: pair[1]))
            }
        }
        // The handler's own X-Swiftlet-* and CORS headers give way to the worker's.
        if fields.contains(where: { Self.workerFieldNames.contains($0.name) }) {
            fields = HTTPFields(fields.filter { !Self.workerFieldNames.contains($0.name) })
        }
        fields.append(HTTPField(name: SwiftletHeader.requestID, value: requestID))
        fields.append(result.cold ? Self.coldField : Self.warmField)
        fields.append(HTTPField(name: SwiftletHeader.initMs, value: Self.format(result.initMs)))
        fields.append(HTTPField(name: SwiftletHeader.runMs, value: Self.format(result.runMs)))
        fields.append(HTTPField(name: SwiftletHeader.billedMs, value: String(Int(result.billedMs))))
        fields.append(HTTPField(name: SwiftletHeader.memoryMB, value: String(result.memoryMB)))
        fields.append(HTTPField(name: SwiftletHeader.sandbox, value: result.sandboxID))
        fields.append(contentsOf: constantFields)
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: body))
    }

    private func preflight(_ request: Request, lambda: String, requestID: String) -> Response {
        var fields = HTTPFields()
        addCORS(&fields)
        var methods = Self.defaultMethods
        if let source = try? manager.registry.lookup(lambda), let allowed = source.config.httpMethods { methods = allowed }
        fields[.accessControlAllowMethods] = (methods + ["OPTIONS"]).joined(separator: ", ")
        if let requested = request.headers[.accessControlRequestHeaders], !requested.isEmpty {
            fields[.accessControlAllowHeaders] = requested
        } else {
            fields[.accessControlAllowHeaders] = "Content-Type, Authorization, X-Requested-With"
        }
        fields[.accessControlMaxAge] = "600"
        fields[.allow] = (methods + ["OPTIONS"]).joined(separator: ", ")
        fields[SwiftletHeader.requestID] = requestID
        return Response(status: .noContent, headers: fields)
    }

    private func addCORS(_ fields: inout HTTPFields) {
        fields.append(contentsOf: Self.corsFields)
    }

    func errorResponse(_ error: InvocationError, lambda: String, requestID: String) -> Response {
        var response = errorJSON(status: error.status, message: error.description, lambda: lambda, requestID: requestID)
        if case .methodNotAllowed(_, let allowed) = error {
            response.headers[.allow] = (allowed + ["OPTIONS"]).joined(separator: ", ")
        }
        if case .queueFull = error { response.headers[.retryAfter] = "1" }
        return response
    }

    func errorJSON(status: Int, message: String, lambda: String, requestID: String) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[SwiftletHeader.requestID] = requestID
        fields[SwiftletHeader.worker] = workerID
        addCORS(&fields)
        let body = Self.json(["error": message, "lambda": lambda, "request_id": requestID])
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }

    /// Milliseconds with three decimals ("12.345"), without the cost of String(format:).
    static func format(_ ms: Double) -> String {
        let micros = Int((max(0, ms) * 1000).rounded())
        let fraction = micros % 1000
        let padding = fraction < 10 ? "00" : fraction < 100 ? "0" : ""
        return "\(micros / 1000).\(padding)\(fraction)"
    }
}

/// Response headers every invocation carries (the bench harness reads them into its request rows).
public enum SwiftletHeader {
    public static let requestID = HTTPField.Name("X-Swiftlet-Request-Id")!
    public static let start = HTTPField.Name("X-Swiftlet-Start")!
    public static let initMs = HTTPField.Name("X-Swiftlet-Init-Ms")!
    public static let runMs = HTTPField.Name("X-Swiftlet-Run-Ms")!
    public static let billedMs = HTTPField.Name("X-Swiftlet-Billed-Ms")!
    public static let memoryMB = HTTPField.Name("X-Swiftlet-Memory-Mb")!
    public static let sandbox = HTTPField.Name("X-Swiftlet-Sandbox")!
    public static let worker = HTTPField.Name("X-Swiftlet-Worker")!
}
