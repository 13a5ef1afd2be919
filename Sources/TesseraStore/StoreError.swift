public import TesseraCore

/// The only errors a store reports. Backends translate their own failures into these.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound
    case alreadyExists
    /// The write conflicts with the current state (a concurrent change, a broken invariant).
    case conflict(String)
    /// The backend cannot be reached or is failing; the caller answers 503, never a partial success.
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound: "not found"
        case .alreadyExists: "already exists"
        case .conflict(let why): "conflict: \(why)"
        case .unavailable(let why): "store unavailable: \(why)"
        }
    }
}

/// Invariants every backend checks before writing a refresh rotation, in one place.
public enum RefreshInvariants {
    /// The access token must be a child of the family and of its tenant (the lineage query only
    /// follows children of the same tenant), and the refresh token must be one of the family's.
    public static func requireBelongs(
        _ token: IssuedToken, _ refresh: RefreshTokenRecord, to familyID: String, tenant: TenantID
    ) throws(StoreError) {
        guard token.parentJTI == familyID, token.tenantID == tenant else {
            throw StoreError.conflict("the access token is not a child of the refresh family")
        }
        guard refresh.familyID == familyID else { throw StoreError.conflict("the refresh token is not of the family") }
    }
}
