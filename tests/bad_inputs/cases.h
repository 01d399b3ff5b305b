// The bad-input table (issue 15): cases in tests/bad_inputs/*.cases, each a
// command or a plane API request with the exit code (or HTTP status) and the
// message text it must produce. This header parses them; bad_inputs_test.cc
// runs them against a real plane.
//
// Syntax: cases are separated by blank lines; a line starting with '#' is a
// comment (there are no trailing comments: '#' inside a value is text).
// Every other line is "key: value":
//
//   case: NAME              first line of every case; unique in its file
//   run: cce job status x   argv, split like a shell ('...', "...", \x);
//                           first word cce, cce-plane, cce-agent or cce-decryptfs
//   file: job.yaml          (run) a file written into $WORK first; its content is
//   | name: x               the following lines starting with "| " ("|" alone: an
//                           empty line); repeatable; no $VARS expanded in it
//   stdin: TEXT             (run) one line (with its newline) on stdin
//   exit: 2                 (run) expected exit code
//   http: POST /v1/x        (instead of run) a request to the fixture's plane
//   header: Name: value     (http) repeatable
//   body: {"a": 1}          (http) one line; Content-Type application/json unless a header says
//   status: 400             (http) expected HTTP status
//   as: consumer            whose token: operator, provider, consumer (default),
//                           reviewer or none (for run: CCE_PLANE_URL/CCE_TOKEN/
//                           CCE_CA_FILE in the environment; none: not logged in)
//   message: no job 'x'     repeatable, at least one: a substring of stderr or
//                           stdout (run) or of the response body (http)
//   absent: HTTP 404        repeatable: a substring that must NOT appear there
//
// $NAME (NAME in upper case) is replaced in run, stdin, http, header, body,
// message and absent by the fixture's value (kVariables); an unknown NAME is a
// parse error. In run, single quotes keep '$' literal.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cce::bad_inputs {

// What a $NAME may be (the runner sets each one).
inline const std::vector<std::string> kVariables = {
    "WORK",       // this case's own empty directory, also the working directory
    "PLANE",      // https://127.0.0.1:PORT
    "CA",         // the plane's CA certificate
    "DATA",       // the plane's data directory
    "BIN",        // the directory of the binaries
    "DATASET",    // a registered dataset the consumer rents ("claims")
    "KEY",        // its dataset key file
    "WRONG_KEY",  // another dataset key file
    "PLAIN",      // its plaintext directory
    "ENC",        // its encrypted directory
    "TAMPERED",   // a copy of ENC with one ciphertext byte flipped
    "IMAGE",      // an OCI layout directory (tagged team/stats:1.0, already pushed)
    "JOB",        // a job of the consumer, HELD by the output gate
    "TOKEN",      // the consumer's API token
    "TLS_KEY",    // the plane's TLS private key (a key, not a certificate)
};

struct Case {
  std::string file;  // "cli.cases" (as given to ParseCases)
  int line = 0;      // of its "case:" line
  std::string name;
  // run cases
  std::string run;  // as written (split by SplitCommand when run)
  std::vector<std::pair<std::string, std::string>> files = {};  // name, content
  std::optional<std::string> stdin_text = std::nullopt;
  std::optional<int> exit = std::nullopt;
  // http cases
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers = {};
  std::optional<std::string> body = std::nullopt;
  std::optional<int> status = std::nullopt;
  // both
  std::string as = "consumer";
  std::vector<std::string> messages = {};
  std::vector<std::string> absent = {};

  bool is_http() const { return !method.empty(); }
  // "cli.cases:12 (job status of an unknown id)"
  std::string where() const { return file + ":" + std::to_string(line) + " (" + name + ")"; }
};

// Parses one .cases file. Errors are kInvalidArgument "FILE:LINE: problem".
StatusOr<std::vector<Case>> ParseCases(std::string_view text, const std::string& file);

// Replaces every $NAME by vars[NAME]; a NAME not in vars is an error naming it.
StatusOr<std::string> Expand(std::string_view text, const std::map<std::string, std::string>& vars);

// Splits a run line like a shell (no globbing, no operators): whitespace
// separates words; '...' is literal; "..." keeps spaces and takes \" \\ \$;
// \x outside quotes is x. $NAME expands (not in '...'). Errors: an unclosed
// quote, a trailing backslash, an unknown $NAME, an empty line.
StatusOr<std::vector<std::string>> SplitCommand(std::string_view line,
                                                const std::map<std::string, std::string>& vars);

}  // namespace cce::bad_inputs
