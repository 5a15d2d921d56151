package headtree

// The raw RFC 6962 hashes, for the test vectors, whose leaves are not heads.
var (
	HashLeaf     = hashLeaf
	HashChildren = hashChildren
)
