// Private to src/gate: the one normalisation applied to reference cells and
// to output text alike (fingerprint.cc's comment block documents the rules),
// so a value matches however an output formats it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cce::gate::normalize {

// Folds UTF-8 text: fullwidth forms to ASCII, invisible characters dropped,
// every kind of space, quote and control character to ' ', ASCII and
// Latin-1 letters to lower case; bytes that are not valid UTF-8 become ' '.
// Appends to `out`.
void Fold(std::string_view text, std::string* out);

// Splits folded text into tokens: maximal runs of letters/digits with inner
// . - _ @ + ' (and '/' between digits, ',' in thousands groups), trimmed of
// leading and trailing punctuation. Views point into `folded`.
void Tokenize(std::string_view folded, std::vector<std::string_view>* tokens);

// The canonical forms a token may match as, each a string with a one-byte
// kind prefix: 't' text (the folded token), 'n' number (sign dropped,
// significant digits and decimal exponent: "n12345e4" for 1234.5), 'd' date
// ("d20230105"). `strength` is what min_token_chars is compared with:
// characters for text, significant digits for numbers, 8 for dates.
struct Forms {
  std::string buf;  // the forms, back to back
  struct Span {
    uint32_t begin = 0;
    uint32_t size = 0;
    uint32_t strength = 0;
    // Kind and coarse shape (text: length; number: significant digits and
    // exponent), below kShapes: lets a matcher skip forms no reference has.
    uint16_t shape = 0;
  };
  std::vector<Span> spans;
  std::string_view at(size_t i) const { return {buf.data() + spans[i].begin, spans[i].size}; }
  size_t size() const { return spans.size(); }
  void clear() {
    buf.clear();
    spans.clear();
  }
};

inline constexpr size_t kShapes = 5 << 12;

struct TokenInfo {
  bool is_number = false;     // parses as a number (a numeric form was added)
  bool leading_zero = false;  // an integer written with leading zeros ("00123")
  bool is_date = false;
  double value = 0;            // the number's value when is_number and wanted
  uint32_t significant = 0;    // its significant digits
  int32_t last_digit_exp = 0;  // decimal exponent of its last significant digit
  int32_t exponent = 0;        // value = 0.<significant digits> x 10^exponent
};

// Appends the forms of one token. `numeric_of_leading_zero`: whether an
// integer with leading zeros also gets its numeric form (outputs: always;
// reference cells: only in numeric columns). `want_value`: fill
// TokenInfo::value (reference column statistics; outputs skip the cost).
TokenInfo AddTokenForms(std::string_view token, bool numeric_of_leading_zero, Forms* forms,
                        bool want_value = false);

// A cheap look at a table cell holding one plain number ("-1234.50",
// "1.5e3", no thousands separators or leading zeros): its numeric form's
// strength and shape, without building the form. False for anything else.
bool PlainNumberShape(std::string_view cell, uint32_t* strength, uint16_t* shape);

// Appends a 't' form of tokens joined by single spaces (multi-token cells
// and output shingles).
void AddJoinedForm(const std::string_view* tokens, size_t count, Forms* forms);

// The form a model stores of a number: 'm' + the numeric form of the value
// rounded to float32 and printed with 6 significant digits (FLT_DIG), so a
// float32 weight holding 52345.12 matches the reference cell "52,345.12".
// Returns false (nothing appended) for non-finite values and zero.
bool AddMemoForm(double value, Forms* forms);

// Characters of a text form that count toward min_token_chars (UTF-8 code
// points other than spaces).
uint32_t TextStrength(std::string_view folded);

}  // namespace cce::gate::normalize
