/// A minimal tar reader and writer: ustar headers, GNU long names ('L'/'K'), pax headers ('x'/'g').

/// One logical tar entry after long-name and pax records were applied.
struct TarEntry: Equatable {
    enum Kind: Equatable {
        case file
        case directory
        case symlink
        case hardLink
        case characterDevice, blockDevice, fifo
        case unsupported(UInt8)
    }

    var path: String
    var kind: Kind
    var linkTarget: String
    var mode: Int
    /// Range of the file's data inside the tar bytes.
    var data: Range<Int>
}

enum TarReader {
    static let blockSize = 512

    /// Parses every entry of `tar`. Throws `RegistryError.badArchive` for malformed data; does not judge safety.
    static func entries(of tar: [UInt8], maxEntries: Int = 100_000) throws(RegistryError) -> [TarEntry] {
        var entries: [TarEntry] = []
        var offset = 0
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        var globalPax: [String: String] = [:]
        var headerCount = 0

        while offset + blockSize <= tar.count {
            let header = tar[offset..<offset + blockSize]
            if header.allSatisfy({ $0 == 0 }) { return entries }  // end-of-archive marker
            headerCount += 1
            guard try verifyChecksum(header, index: headerCount) else {
                throw .badArchive("tar header \(headerCount) has a bad checksum (not a tar archive, or corrupt)")
            }
            let typeflag = header[header.startIndex + 156]
            var size = try number(header, 124, 12, field: "size", index: headerCount)
            let isMeta = [UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K")].contains(typeflag)
            if let paxSize = pax["size"], !isMeta {
                guard let s = Int(paxSize), s >= 0 else { throw .badArchive("pax header has an invalid size \"\(paxSize)\"") }
                size = s
            }
            let dataStart = offset + blockSize
            guard size >= 0, size <= tar.count, dataStart + size <= tar.count else {
                throw .badArchive("tar entry \(headerCount) is truncated (data runs past the end of the archive)")
            }
            let data = dataStart..<dataStart + size
            offset = dataStart + (size + blockSize - 1) / blockSize * blockSize

            switch typeflag {
            case UInt8(ascii: "L"):
                longName = try cString(tar[data], what: "GNU long name")
                continue
            case UInt8(ascii: "K"):
                longLink = try cString(tar[data], what: "GNU long link name")
                continue
            case UInt8(ascii: "x"):
                pax.merge(try paxRecords(tar[data]), uniquingKeysWith: { _, new in new })
                continue
            case UInt8(ascii: "g"):
                globalPax.merge(try paxRecords(tar[data]), uniquingKeysWith: { _, new in new })
                continue
            default:
                break
            }

            var path = try headerPath(header)
            var link = try cString(header[header.startIndex + 157..<header.startIndex + 257], what: "link name")
            if let p = globalPax["path"] { path = p }
            if let l = globalPax["linkpath"] { link = l }
            if let longName { path = longName }
            if let longLink { link = longLink }
            if let p = pax["path"] { path = p }
            if let l = pax["linkpath"] { link = l }
            longName = nil
            longLink = nil
            pax = [:]

            let kind: TarEntry.Kind
            switch typeflag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                kind = path.hasSuffix("/") && typeflag == 0 ? .directory : .file
            case UInt8(ascii: "1"): kind = .hardLink
            case UInt8(ascii: "2"): kind = .symlink
            case UInt8(ascii: "3"): kind = .characterDevice
            case UInt8(ascii: "4"): kind = .blockDevice
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "6"): kind = .fifo
            default: kind = .unsupported(typeflag)
            }
            let mode = (try? number(header, 100, 8, field: "mode", index: headerCount)) ?? 0o644
            entries.append(TarEntry(path: path, kind: kind, linkTarget: link, mode: mode,
                                    data: kind == .file ? data : dataStart..<dataStart))
            guard entries.count <= maxEntries else {
                throw .badArchive("the archive has more than \(maxEntries) entries")
            }
        }
        if offset < tar.count {
            throw .badArchive("the tar data ends in the middle of a header (truncated archive)")
        }
        return entries
    }

    private static func headerPath(_ header: ArraySlice<UInt8>) throws(RegistryError) -> String {
        let s = header.startIndex
        let name = try cString(header[s..<s + 100], what: "entry name")
        // Only POSIX ustar ("ustar\0") has the prefix field; old GNU headers use those bytes for other data.
        let isPosixUstar = Array(header[s + 257..<s + 263]) == Array("ustar".utf8) + [0]
        if isPosixUstar {
            let prefix = try cString(header[s + 345..<s + 500], what: "entry name prefix")
            if !prefix.isEmpty { return prefix + "/" + name }
        }
        return name
    }

    private static func verifyChecksum(_ header: ArraySlice<UInt8>, index: Int) throws(RegistryError) -> Bool {
        let stored = try number(header, 148, 8, field: "checksum", index: index)
        var unsigned = 0
        var signed = 0
        for (i, byte) in header.enumerated() {
            let b = (148..<156).contains(i) ? UInt8(ascii: " ") : byte
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        return stored == unsigned || stored == signed
    }

    /// Octal (NUL/space terminated) or GNU base-256 numeric field.
    private static func number(_ header: ArraySlice<UInt8>, _ at: Int, _ length: Int, field: String, index: Int) throws(RegistryError) -> Int {
        let bytes = header[header.startIndex + at..<header.startIndex + at + length]
        if let first = bytes.first, first & 0x80 != 0 {
            var value = Int(first & 0x7f)
            for b in bytes.dropFirst() {
                guard value < (Int.max >> 8) else { throw .badArchive("tar header \(index): \(field) is too large") }
                value = value << 8 | Int(b)
            }
            return value
        }
        var value = 0
        var seenDigit = false
        for b in bytes {
            if b == 0 || b == UInt8(ascii: " ") {
                if seenDigit { break } else { continue }
            }
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else {
                throw .badArchive("tar header \(index): \(field) is not an octal number (not a tar archive, or corrupt)")
            }
            seenDigit = true
            guard value < (Int.max >> 3) else { throw .badArchive("tar header \(index): \(field) is too large") }
            value = value * 8 + Int(b - UInt8(ascii: "0"))
        }
        return value
    }

    private static func cString(_ bytes: ArraySlice<UInt8>, what: String) throws(RegistryError) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        guard let text = String(validating: bytes[bytes.startIndex..<end], as: UTF8.self) else {
            throw .badArchive("an archive \(what) is not valid UTF-8")
        }
        return text
    }

    /// pax records: "LENGTH key=value\n".
    private static func paxRecords(_ bytes: ArraySlice<UInt8>) throws(RegistryError) -> [String: String] {
        var records: [String: String] = [:]
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0 { break }
            guard let space = bytes[i...].firstIndex(of: UInt8(ascii: " ")),
                  let lengthText = String(validating: bytes[i..<space], as: UTF8.self), let length = Int(lengthText),
                  length > space - i, i + length <= bytes.endIndex, bytes[i + length - 1] == UInt8(ascii: "\n") else {
                throw .badArchive("malformed pax extended header")
            }
            let record = bytes[(space + 1)..<(i + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")),
                  let key = String(validating: record[record.startIndex..<equals], as: UTF8.self),
                  let value = String(validating: record[(equals + 1)...], as: UTF8.self) else {
                throw .badArchive("malformed pax record (not valid UTF-8 key=value)")
            }
            records[key] = value
            i += length
        }
        return records
    }
}

/// Builds tar archives (ustar headers; pax 'x' records for long names). Public so tools and tests can craft archives.
public struct TarWriter: Sendable {
    public enum EntryType: UInt8, Sendable {
        case file = 0x30, hardLink = 0x31, symlink = 0x32, characterDevice = 0x33, blockDevice = 0x34
        case directory = 0x35, fifo = 0x36, gnuLongName = 0x4C, gnuLongLink = 0x4B, paxExtended = 0x78, paxGlobal = 0x67
    }

    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func addDirectory(_ path: String, mode: Int = 0o755) {
        addEntry(path: path.hasSuffix("/") ? path : path + "/", type: .directory, mode: mode)
    }

    public mutating func addFile(_ path: String, contents: [UInt8], mode: Int = 0o644) {
        addEntry(path: path, type: .file, contents: contents, mode: mode)
    }

    public mutating func addSymlink(_ path: String, target: String) {
        addEntry(path: path, type: .symlink, linkTarget: target, mode: 0o777)
    }

    public mutating func addHardLink(_ path: String, target: String) {
        addEntry(path: path, type: .hardLink, linkTarget: target)
    }

    /// Any entry; names longer than the ustar fields get a pax header first.
    public mutating func addEntry(path: String, type: EntryType, contents: [UInt8] = [], linkTarget: String = "", mode: Int = 0o644) {
        var pax: [(String, String)] = []
        if path.utf8.count > 100 { pax.append(("path", path)) }
        if linkTarget.utf8.count > 100 { pax.append(("linkpath", linkTarget)) }
        if !pax.isEmpty {
            let records = Self.paxData(pax)
            bytes += Self.header(path: "PaxHeaders/" + String(path.suffix(60)), type: .paxExtended, size: records.count)
            append(records)
        }
        bytes += Self.header(path: path, type: type, size: contents.count, linkTarget: linkTarget, mode: mode)
        append(contents)
    }

    /// Appends raw data padded to the block size.
    public mutating func append(_ data: [UInt8]) {
        bytes += data
        let padding = (512 - data.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: padding)
    }

    /// The archive with its two end-of-archive blocks.
    public func finished() -> [UInt8] {
        bytes + [UInt8](repeating: 0, count: 1024)
    }

    /// One 512-byte ustar header; names and link targets longer than 100 bytes are cut (use pax or 'L' entries before it).
    public static func header(path: String, type: EntryType, size: Int, linkTarget: String = "", mode: Int = 0o644) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ text: [UInt8], at: Int, max: Int) {
            for (i, b) in text.prefix(max).enumerated() { h[at + i] = b }
        }
        func octal(_ value: Int, at: Int, width: Int) {
            let digits = String(value, radix: 8)
            let padded = String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
            put(Array(padded.utf8), at: at, max: width - 1)
        }
        put(Array(path.utf8), at: 0, max: 100)
        octal(mode & 0o7777, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(0, at: 136, width: 12)
        h[156] = type.rawValue
        put(Array(linkTarget.utf8), at: 157, max: 100)
        put(Array("ustar".utf8) + [0], at: 257, max: 6)
        put(Array("00".utf8), at: 263, max: 2)
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        h[155] = UInt8(ascii: " ")
        return h
    }

    /// pax extended-header data for `records`.
    public static func paxData(_ records: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).utf8.count + body.utf8.count != length { length = String(length).utf8.count + body.utf8.count }
            out += Array((String(length) + body).utf8)
        }
        return out
    }
}
