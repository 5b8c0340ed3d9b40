import Platform
import XCTest

final class RegistryNameTests: XCTestCase {
    func testValidNames() throws {
        for name in ["hello", "a", "A-b_c.d", "v1.2.3", ".hidden", "..x", String(repeating: "a", count: 128), "0"] {
            XCTAssertNoThrow(try LambdaName.validate(name), name)
            XCTAssertTrue(LambdaName.isValid(name), name)
        }
    }

    func testInvalidNamesExplainWhy() {
        let cases: [(String, String)] = [
            ("", "empty"),
            (".", "\".\" and \"..\""),
            ("..", "\".\" and \"..\""),
            ("a/b", "only letters"),
            ("../x", "only letters"),
            ("has space", "only letters"),
            ("héllo", "only letters"),
            ("名前", "only letters"),
            ("tab\t", "only letters"),
            ("a~b", "only letters"),
            (String(repeating: "a", count: 129), "longer than 128"),
        ]
        for (name, expected) in cases {
            do {
                try LambdaName.validate(name)
                XCTFail("\(name) was accepted")
            } catch {
                guard case .invalidName(_, let reason) = error else { return XCTFail("wrong error \(error)") }
                XCTAssertTrue(reason.contains(expected), "\(name): \(reason)")
                XCTAssertTrue(error.description.hasPrefix("invalid lambda name"), error.description)
            }
            XCTAssertFalse(LambdaName.isValid(name))
        }
    }

    func testErrorDescriptionsNameTheSubject() {
        XCTAssertEqual(RegistryError.builtin("echo").description, "echo is a built-in app and cannot be replaced or removed")
        XCTAssertTrue(RegistryError.notFound("ghost").description.contains("\"ghost\""))
        XCTAssertTrue(RegistryError.unsafeArchive(entry: "../x", reason: "r").description.contains("\"../x\""))
        XCTAssertTrue(RegistryError.invalidLambda(name: "hello", message: "m").description.contains("\"hello\""))
    }
}
