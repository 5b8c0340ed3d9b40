import XCTest
final class PlaceholderAppsTests: XCTestCase { func testNothing() {} }
