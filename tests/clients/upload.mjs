// Uploads a photo the way web apps do: Apollo Client with apollo-upload-client's link, which
// sends a GraphQL multipart request. Prints the mutation's result as one JSON line.
//
//   node upload.mjs <graphql url> <authorization header> <menu item id> <file> [preflight]
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { ApolloClient, InMemoryCache, gql } from "@apollo/client/core/index.js";
import createUploadLink from "apollo-upload-client/createUploadLink.mjs";

const [uri, authorization, menuItemId, path, preflight = "yes"] = process.argv.slice(2);
const headers = { authorization };
if (preflight === "yes") headers["Apollo-Require-Preflight"] = "true";
const client = new ApolloClient({
  link: createUploadLink({ uri, headers }),
  cache: new InMemoryCache(),
});
const file = new File([await readFile(path)], basename(path), { type: "image/png" });
try {
  const result = await client.mutate({
    mutation: gql`
      mutation Upload($input: UploadMenuItemPhotoInput!) {
        uploadMenuItemPhoto(input: $input) {
          image { url width height alt }
          userErrors { field code message }
        }
      }
    `,
    variables: { input: { menuItemId, file, alt: "From Apollo Client" } },
  });
  console.log(JSON.stringify({ data: result.data }));
} catch (error) {
  console.log(JSON.stringify({ error: error.message, status: error.networkError?.statusCode ?? null }));
}
