import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Everything the registry refuses, each with one sentence naming the lambda or archive entry.
public enum RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidName(String, reason: String)
    case notFound(String)
    case builtin(String)
    case unsafeArchive(entry: String, reason: String)
    case badArchive(String)
    case invalidLambda(name: String, message: String)

    public var description: String {
        switch self {
        case .invalidName(let name, let reason):
            return "invalid lambda name \"\(name)\": \(reason)"
        case .notFound(let name):
            return "no lambda named \"\(name)\" in the registry"
        case .builtin(let name):
            return "\(name) is a built-in app and cannot be replaced or removed"
        case .unsafeArchive(let entry, let reason):
            return "archive entry \"\(entry)\" refused: \(reason); nothing was installed"
        case .badArchive(let message):
            return "invalid archive: \(message); nothing was installed"
        case .invalidLambda(let name, let message):
            return "lambda \"\(name)\" is invalid: \(message)"
        }
    }
}

/// A filesystem failure inside the registry directory (not the caller's fault).
public struct RegistryStorageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "registry storage error at \(path): \(message)" }

    static func errno(_ path: String, _ operation: String, _ code: Int32 = Glibc.errno) -> RegistryStorageError {
        RegistryStorageError(path: path, message: "\(operation) failed: \(String(cString: strerror(code)))")
    }
}

/// Lambda names: `^[A-Za-z0-9._-]+$`, not "." or "..", at most 128 characters.
public enum LambdaName {
    public static let maxLength = 128

    public static func validate(_ name: String) throws(RegistryError) {
        if name.isEmpty { throw .invalidName(name, reason: "the name is empty") }
        if name == "." || name == ".." { throw .invalidName(name, reason: "\".\" and \"..\" are not lambda names") }
        let bytes = name.utf8
        if bytes.count > maxLength {
            throw .invalidName(String(name.prefix(40)) + "…", reason: "longer than \(maxLength) characters (\(bytes.count))")
        }
        for byte in bytes where !isAllowed(byte) {
            throw .invalidName(name, reason: "only letters A-Z and a-z, digits, '.', '_' and '-' are allowed")
        }
    }

    public static func isValid(_ name: String) -> Bool {
        do { try validate(name); return true } catch { return false }
    }

    private static func isAllowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
