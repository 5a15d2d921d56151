package signing_test

import (
	"fmt"
	"log"

	"github.com/ledgerd/ledgerd/signing"
)

// A service signs the canonical bytes of a statement and names its key; a
// verifier that trusts several keys finds the named one and checks the
// signature over the same canonical bytes.
func Example() {
	privPEM, pubPEM, err := signing.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	signer, err := signing.LoadSigner(string(privPEM)) // or the path of the .key file
	if err != nil {
		log.Fatal(err)
	}
	statement := map[string]any{"userId": 7, "balance": 10100.50, "seq": 42}
	msg, err := signing.Canonical(statement)
	if err != nil {
		log.Fatal(err)
	}
	keyID, sig := signer.KeyID(), signer.SignBase64(msg)
	fmt.Println(string(msg))

	// The verifier's side.
	pub, err := signing.ParsePublicKey(pubPEM)
	if err != nil {
		log.Fatal(err)
	}
	ring := signing.KeyRing{}
	ring.Add(pub)
	key, ok := ring.Find(keyID)
	if !ok {
		log.Fatal("unknown key id")
	}
	fmt.Println("verified:", key.VerifyBase64(msg, sig) == nil)
	fmt.Println("tampered:", key.VerifyBase64([]byte(`{"balance":1e6,"seq":42,"userId":7}`), sig))
	// Output:
	// {"balance":10100.5,"seq":42,"userId":7}
	// verified: true
	// tampered: signature does not verify
}

func ExampleCanonicalJSON() {
	out, err := signing.CanonicalJSON([]byte(`{"z": 1e2, "a": "caf\u00e9", "m": 10100.50, "big": 9007199254740993}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	// Output:
	// {"a":"café","big":9007199254740992,"m":10100.5,"z":100}
}
