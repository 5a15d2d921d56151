// Calls a live ledgerd (LEDGERD_URL) through openapi-fetch, typed by the
// types openapi-typescript generated from api/openapi.yaml (schema.d.ts,
// written next to this file by TestGeneratedTypeScriptClient): creates a
// user, deposits 1234567.89 and reads it back exactly, then reads the
// type, param and requestId of errors. Any failure throws, and node exits
// non-zero.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

declare const process: { env: Record<string, string | undefined> };

const baseUrl = process.env["LEDGERD_URL"];
if (!baseUrl) {
  throw new Error("LEDGERD_URL is not set: ledgerd's TestGeneratedTypeScriptClient runs this against a live server");
}
const client = createClient<paths>({ baseUrl });

function check(ok: boolean, what: string, body?: unknown): void {
  if (!ok) {
    throw new Error(`${what}${body === undefined ? "" : ": " + JSON.stringify(body)}`);
  }
}

// Money is a JSON number: read as a double, it is exact once rounded to cents.
function cents(v: number): string {
  return v.toFixed(2);
}

const created = await client.POST("/api/users", { body: {} });
check(created.response.status === 201 && created.data !== undefined, "create a user", created.error);
const id = String(created.data!.data.id);

const deposit = await client.PUT("/api/users/{id}/balance", {
  params: { path: { id } },
  body: { amount: 1234567.89, description: "deposit" },
});
check(deposit.response.status === 200 && deposit.data !== undefined, "deposit 1234567.89", deposit.error);
check(deposit.data!.data.balance === 1234567.89, "the deposit's answer has the balance exactly", deposit.data);

const got = await client.GET("/api/users/{id}", { params: { path: { id } } });
check(got.response.status === 200 && got.data !== undefined, "read the user", got.error);
const user = got.data!.data;
check(user.balance === 1234567.89 && cents(user.balance) === "1234567.89", "the balance reads back exactly", user);
check(user.available === 1234567.89 && user.held === 0, "available and held", user);

// A string amount is accepted too, and the entry's amount reads back exactly.
const withdrawal = await client.PUT("/api/users/{id}/balance", {
  params: { path: { id } },
  body: { amount: "-0.01" },
});
check(withdrawal.response.status === 200 && withdrawal.data !== undefined, "withdraw 0.01 given as a string", withdrawal.error);
check(cents(withdrawal.data!.data.balance) === "1234567.88", "the balance after the withdrawal", withdrawal.data);
const history = await client.GET("/api/users/{id}/transactions", { params: { path: { id }, query: { limit: 2 } } });
check(history.data !== undefined, "list the entries", history.error);
const amounts = history.data!.data.map((e) => cents(e.amount));
check(JSON.stringify(amounts) === JSON.stringify(["-0.01", "1234567.89"]), "entry amounts, newest first", amounts);

// A bad path parameter: type, param and requestId (the X-Request-Id sent).
const badId = await client.GET("/api/users/{id}", {
  params: { path: { id: "abc" } },
  headers: { "X-Request-Id": "ts-bad-id" },
});
check(badId.response.status === 400 && badId.error !== undefined, "GET /api/users/abc is a 400", badId.data);
const e1 = badId.error!.error;
check(e1.type === "validation_error" && e1.param === "id", "the error names the path parameter", e1);
check(e1.requestId === "ts-bad-id" && badId.response.headers.get("X-Request-Id") === e1.requestId, "the error's requestId", e1);

// A bad body field: param names it; requestId is the generated X-Request-Id.
const badAmount = await client.PUT("/api/users/{id}/balance", {
  params: { path: { id } },
  body: { amount: 0.001 },
});
check(badAmount.response.status === 400 && badAmount.error !== undefined, "an amount of 0.001 is a 400", badAmount.data);
const e2 = badAmount.error!.error;
check(e2.type === "validation_error" && e2.param === "amount", "the error names the body field", e2);
check(e2.requestId !== "" && badAmount.response.headers.get("X-Request-Id") === e2.requestId, "the error's requestId", e2);

// A refusal keeps the contract's type and fixed message.
const overdraw = await client.PUT("/api/users/{id}/balance", {
  params: { path: { id } },
  body: { amount: -2000000 },
});
check(overdraw.response.status === 400 && overdraw.error !== undefined, "an overdraft is a 400", overdraw.data);
const e3 = overdraw.error!.error;
check(e3.type === "insufficient_funds" && e3.message === "Insufficient funds", "insufficient_funds", e3);

console.log(`ok: user ${id} holds ${cents(user.balance)}; errors carry type, param and requestId`);
