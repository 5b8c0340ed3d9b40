import XCTest
final class PlaceholderBenchTests: XCTestCase { func testNothing() {} }
