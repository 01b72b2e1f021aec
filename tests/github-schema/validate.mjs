// Validate the GraphQL query on stdin against GitHub's public schema, as octokit publishes it
// (https://github.com/octokit/graphql-schema): prints the validation errors as a JSON list.
import { validate } from "@octokit/graphql-schema";
import { readFileSync } from "node:fs";

const errors = validate(readFileSync(0, "utf8")).map((error) => error.message);
process.stdout.write(JSON.stringify(errors) + "\n");
