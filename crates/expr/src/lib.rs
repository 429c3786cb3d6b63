//! weir-expr owns SQL expressions over record batches: `status >= 500`,
//! `type = 'DDOS' AND target_ip IS NOT NULL`, `src_bytes + dst_bytes`, `status / 100`.
//!
//! An expression is parsed once ([`Expr::parse`], with the SQL parser DataFusion uses),
//! bound to a schema ([`Expr::bind`]: columns resolved, types checked and coerced, the result
//! type known before any data arrives) and evaluated a whole batch at a time with Arrow's
//! compute kernels ([`Bound::eval`]). Filters, computed keys and alert conditions use it.
//!
//! Supported: column names, integer / float / string / boolean / NULL literals, `+ - * / %`,
//! unary `-`, comparisons `= != <> < <= > >=`, `AND OR NOT` (SQL three-valued logic),
//! `IS [NOT] NULL`, `[NOT] IN (…)`, `[NOT] BETWEEN … AND …`, parentheses. Signed integers of
//! any width combine as `Int64`, unsigned ones as `UInt64`, signed with unsigned (literals
//! are signed) as `Int64` in arithmetic; comparisons are exact for every value of both (a
//! non-negative literal compared with an unsigned column is unsigned); with floats as 64-bit floats; a string literal compared with a timestamp is
//! read as an RFC 3339 time.
//!
//! Integer arithmetic is checked: an overflow, a division by zero or a value that does not fit
//! its cast fails that row only ([`Bound::eval_rows`] makes its value null and names the row
//! and the reason; the operators send it to their `.errors` output). A literal zero divisor is
//! refused when the expression is bound. Float division follows IEEE 754 (`x / 0.0` is
//! infinite, `0.0 / 0.0` is NaN), and sinks print those as `"Infinity"`, `"-Infinity"` and
//! `"NaN"`.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{RecordBatch, UInt16Array, cast::AsArray};
//! use weir_expr::Expr;
//!
//! let batch = RecordBatch::try_from_iter([("status", Arc::new(UInt16Array::from(vec![200, 503])) as _)]).unwrap();
//! let e = Expr::parse("status >= 500").unwrap().bind(&batch.schema()).unwrap();
//! let mask = e.eval(&batch).unwrap();
//! assert_eq!(mask.as_boolean().iter().collect::<Vec<_>>(), vec![Some(false), Some(true)]);
//! ```

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    new_null_array, Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch,
    Scalar, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Schema, TimeUnit};
use sqlparser::ast::{self, BinaryOperator, UnaryOperator};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// Errors of parsing, binding and evaluating expressions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a supported SQL expression.
    #[error("{0}")]
    Syntax(String),
    /// The expression does not fit the schema (unknown column, wrong types).
    #[error("{0}")]
    Type(String),
    /// Evaluation failed on data (e.g. division by zero).
    #[error("{0}")]
    Eval(String),
}

/// A parsed expression, not yet bound to a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    node: Node,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Col(String),
    Lit(Lit),
    Binary(Op, Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    IsNull(Box<Node>, bool),
}

fn syntax(msg: impl Into<String>) -> ExprError {
    ExprError::Syntax(msg.into())
}

fn convert(e: &ast::Expr) -> Result<Node, ExprError> {
    use ast::Expr as E;
    Ok(match e {
        E::Identifier(id) => Node::Col(id.value.clone()),
        E::CompoundIdentifier(ids) => Node::Col(
            ids.iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        E::Nested(inner) => convert(inner)?,
        E::Value(v) => Node::Lit(match &v.value {
            ast::Value::Null => Lit::Null,
            ast::Value::Boolean(b) => Lit::Bool(*b),
            ast::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Lit::Int(i),
                Err(_) => Lit::Float(n.parse().map_err(|_| syntax(format!("bad number {n}")))?),
            },
            ast::Value::SingleQuotedString(s) => Lit::Str(s.clone()),
            other => return Err(syntax(format!("unsupported literal {other}"))),
        }),
        E::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => Node::Not(Box::new(convert(expr)?)),
            UnaryOperator::Minus => Node::Neg(Box::new(convert(expr)?)),
            UnaryOperator::Plus => convert(expr)?,
            other => return Err(syntax(format!("unsupported operator {other}"))),
        },
        E::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Plus => Op::Add,
                BinaryOperator::Minus => Op::Sub,
                BinaryOperator::Multiply => Op::Mul,
                BinaryOperator::Divide => Op::Div,
                BinaryOperator::Modulo => Op::Rem,
                BinaryOperator::Eq => Op::Eq,
                BinaryOperator::NotEq => Op::NotEq,
                BinaryOperator::Lt => Op::Lt,
                BinaryOperator::LtEq => Op::LtEq,
                BinaryOperator::Gt => Op::Gt,
                BinaryOperator::GtEq => Op::GtEq,
                BinaryOperator::And => Op::And,
                BinaryOperator::Or => Op::Or,
                other => return Err(syntax(format!("unsupported operator {other}"))),
            };
            Node::Binary(op, Box::new(convert(left)?), Box::new(convert(right)?))
        }
        E::IsNull(inner) => Node::IsNull(Box::new(convert(inner)?), false),
        E::IsNotNull(inner) => Node::IsNull(Box::new(convert(inner)?), true),
        E::InList {
            expr,
            list,
            negated,
        } => {
            let target = convert(expr)?;
            let mut any: Option<Node> = None;
            for item in list {
                let eq = Node::Binary(Op::Eq, Box::new(target.clone()), Box::new(convert(item)?));
                any = Some(match any {
                    None => eq,
                    Some(prev) => Node::Binary(Op::Or, Box::new(prev), Box::new(eq)),
                });
            }
            let any = any.ok_or_else(|| syntax("IN needs at least one value"))?;
            if *negated {
                Node::Not(Box::new(any))
            } else {
                any
            }
        }
        E::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let x = convert(expr)?;
            let both = Node::Binary(
                Op::And,
                Box::new(Node::Binary(
                    Op::GtEq,
                    Box::new(x.clone()),
                    Box::new(convert(low)?),
                )),
                Box::new(Node::Binary(
                    Op::LtEq,
                    Box::new(x),
                    Box::new(convert(high)?),
                )),
            );
            if *negated {
                Node::Not(Box::new(both))
            } else {
                both
            }
        }
        other => return Err(syntax(format!("unsupported expression `{other}`"))),
    })
}

/// Runs `f` on a parser of `text` and requires that it consumed all of it.
fn parse_whole<T>(
    text: &str,
    f: impl FnOnce(&mut Parser<'_>) -> Result<T, sqlparser::parser::ParserError>,
) -> Result<T, ExprError> {
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| syntax(format!("in `{text}`: {e}")))?;
    let out = f(&mut p).map_err(|e| syntax(format!("in `{text}`: {e}")))?;
    let next = p.peek_token();
    if next.token != Token::EOF {
        return Err(syntax(format!(
            "in `{text}`: unexpected `{}` at {}",
            next.token, next.span.start
        )));
    }
    Ok(out)
}

impl Expr {
    /// Parses SQL expression text.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let ast = parse_whole(text, |p| p.parse_expr())?;
        Ok(Expr {
            node: convert(&ast)?,
            text: text.trim().to_string(),
        })
    }

    /// Parses `expression` or `expression AS name`; returns the name too when one is given.
    pub fn parse_aliased(text: &str) -> Result<(Expr, Option<String>), ExprError> {
        let item = parse_whole(text, |p| p.parse_select_item())?;
        match item {
            ast::SelectItem::UnnamedExpr(e) => Ok((
                Expr {
                    node: convert(&e)?,
                    text: text.trim().to_string(),
                },
                None,
            )),
            ast::SelectItem::ExprWithAlias { expr, alias } => Ok((
                Expr {
                    node: convert(&expr)?,
                    text: expr.to_string(),
                },
                Some(alias.value),
            )),
            other => Err(syntax(format!(
                "in `{text}`: expected an expression, got `{other}`"
            ))),
        }
    }

    /// The text the expression was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the expression is just a column name (then it is that column).
    pub fn as_column(&self) -> Option<&str> {
        match &self.node {
            Node::Col(c) => Some(c),
            _ => None,
        }
    }

    /// Columns the expression reads.
    pub fn columns(&self) -> Vec<String> {
        fn walk(n: &Node, out: &mut Vec<String>) {
            match n {
                Node::Col(c) => out.push(c.clone()),
                Node::Lit(_) => {}
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Not(a) | Node::Neg(a) | Node::IsNull(a, _) => walk(a, out),
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Resolves columns against `schema` and checks types.
    pub fn bind(&self, schema: &Schema) -> Result<Bound, ExprError> {
        let node = bind(&self.node, schema)?;
        Ok(Bound {
            data_type: node.data_type(),
            node,
            text: self.text.clone(),
        })
    }
}

/// An expression bound to a schema, ready to evaluate on its batches.
#[derive(Debug, Clone)]
pub struct Bound {
    node: BNode,
    data_type: DataType,
    text: String,
}

#[derive(Debug, Clone)]
enum BNode {
    Col(usize, DataType),
    Lit(Lit, DataType),
    /// Arithmetic or comparison on operands coerced to `operand` type.
    Binary {
        op: Op,
        left: Box<BNode>,
        right: Box<BNode>,
        operand: DataType,
        out: DataType,
    },
    Not(Box<BNode>),
    Neg(Box<BNode>),
    IsNull(Box<BNode>, bool),
}

impl BNode {
    fn data_type(&self) -> DataType {
        match self {
            BNode::Col(_, t) | BNode::Lit(_, t) => t.clone(),
            BNode::Binary { out, .. } => out.clone(),
            BNode::Not(_) | BNode::IsNull(..) => DataType::Boolean,
            // `-bytes` of an unsigned column is signed (and fails for values above i64::MAX).
            BNode::Neg(a) if a.data_type().is_unsigned_integer() => DataType::Int64,
            BNode::Neg(a) => a.data_type(),
        }
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn lit_type(l: &Lit) -> DataType {
    match l {
        Lit::Null => DataType::Null,
        Lit::Bool(_) => DataType::Boolean,
        Lit::Int(_) => DataType::Int64,
        Lit::Float(_) => DataType::Float64,
        Lit::Str(_) => DataType::Utf8,
    }
}

/// The type both operands are brought to, or `None` when they cannot be compared/combined.
/// Unsigned integers stay unsigned (`UInt64`); signed with unsigned is `Int64`, whose cast
/// fails, row by row, for an unsigned value above `i64::MAX` (see [`exact_compare`] for
/// comparisons, which never fail).
fn common(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType as T;
    Some(match (a, b) {
        (T::Null, x) | (x, T::Null) => x.clone(),
        (x, y) if x.is_unsigned_integer() && y.is_unsigned_integer() => T::UInt64,
        (x, y) if x.is_integer() && y.is_integer() => T::Int64,
        (x, y) if x.is_numeric() && y.is_numeric() => T::Float64,
        (T::Timestamp(..), T::Timestamp(..))
        | (T::Timestamp(..), T::Utf8)
        | (T::Utf8, T::Timestamp(..)) => ts_type(),
        (T::Utf8, T::Utf8) => T::Utf8,
        (T::Boolean, T::Boolean) => T::Boolean,
        _ => return None,
    })
}

/// The type two operands are compared in: [`common`], except that a signed and an unsigned
/// integer compare as 128-bit decimals, exact for every value of both.
fn exact_compare(a: &DataType, b: &DataType) -> Option<DataType> {
    let mixed =
        a.is_integer() && b.is_integer() && a.is_unsigned_integer() != b.is_unsigned_integer();
    if mixed {
        Some(DataType::Decimal128(38, 0))
    } else {
        common(a, b)
    }
}

/// The operand's type in a comparison, except that a non-negative integer literal next to an
/// unsigned operand is unsigned too (`bytes > 0` compares in `UInt64`). Arithmetic keeps
/// literals signed: `status - 300` is negative for a 200, as in SQL.
fn with_literal(n: &BNode, other: &DataType) -> DataType {
    match n {
        BNode::Lit(Lit::Int(i), _) if *i >= 0 && other.is_unsigned_integer() => DataType::UInt64,
        _ => n.data_type(),
    }
}

/// A literal zero divisor is refused before any data arrives.
fn zero_divisor(op: Op, right: &BNode) -> Option<ExprError> {
    let zero = match right {
        BNode::Lit(Lit::Int(0), _) => true,
        BNode::Lit(Lit::Float(f), _) => *f == 0.0,
        _ => false,
    };
    (zero && matches!(op, Op::Div | Op::Rem))
        .then(|| ExprError::Type("division by zero (the divisor is the literal 0)".into()))
}

fn bind(n: &Node, schema: &Schema) -> Result<BNode, ExprError> {
    Ok(match n {
        Node::Col(name) => {
            let i = schema.index_of(name).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                ExprError::Type(format!(
                    "no column {name:?}; the input has {}",
                    names.join(", ")
                ))
            })?;
            BNode::Col(i, schema.field(i).data_type().clone())
        }
        Node::Lit(l) => BNode::Lit(l.clone(), lit_type(l)),
        Node::Not(a) => {
            let a = bind(a, schema)?;
            expect_bool(&a, "NOT")?;
            BNode::Not(Box::new(a))
        }
        Node::Neg(a) => {
            let a = bind(a, schema)?;
            if !a.data_type().is_numeric() {
                return Err(ExprError::Type(format!(
                    "cannot negate a {}",
                    a.data_type()
                )));
            }
            BNode::Neg(Box::new(a))
        }
        Node::IsNull(a, neg) => BNode::IsNull(Box::new(bind(a, schema)?), *neg),
        Node::Binary(op, l, r) => {
            let (l, r) = (bind(l, schema)?, bind(r, schema)?);
            let (lt, rt) = (l.data_type(), r.data_type());
            if let Some(e) = zero_divisor(*op, &r) {
                return Err(e);
            }
            match op {
                Op::And | Op::Or => {
                    expect_bool(&l, "AND/OR")?;
                    expect_bool(&r, "AND/OR")?;
                    BNode::Binary {
                        op: *op,
                        left: Box::new(l),
                        right: Box::new(r),
                        operand: DataType::Boolean,
                        out: DataType::Boolean,
                    }
                }
                Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq => {
                    let (lt, rt) = (with_literal(&l, &rt), with_literal(&r, &lt));
                    let operand = exact_compare(&lt, &rt)
                        .ok_or_else(|| ExprError::Type(format!("cannot compare {lt} with {rt}")))?;
                    BNode::Binary {
                        op: *op,
                        left: Box::new(l),
                        right: Box::new(r),
                        operand,
                        out: DataType::Boolean,
                    }
                }
                Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => {
                    let operand =
                        common(&lt, &rt)
                            .filter(DataType::is_numeric)
                            .ok_or_else(|| {
                                ExprError::Type(format!("cannot do arithmetic on {lt} and {rt}"))
                            })?;
                    BNode::Binary {
                        op: *op,
                        left: Box::new(l),
                        right: Box::new(r),
                        out: operand.clone(),
                        operand,
                    }
                }
            }
        }
    })
}

fn expect_bool(n: &BNode, what: &str) -> Result<(), ExprError> {
    match n.data_type() {
        DataType::Boolean | DataType::Null => Ok(()),
        t => Err(ExprError::Type(format!("{what} needs booleans, got {t}"))),
    }
}

fn eval_err(e: impl std::fmt::Display) -> ExprError {
    ExprError::Eval(e.to_string())
}

/// A value during evaluation: a column, or one value for every row.
enum Val {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Val {
    fn array(&self) -> &ArrayRef {
        match self {
            Val::Array(a) | Val::Scalar(a) => a,
        }
    }

    fn map(
        self,
        f: impl FnOnce(&ArrayRef) -> Result<ArrayRef, ExprError>,
    ) -> Result<Val, ExprError> {
        Ok(match self {
            Val::Array(a) => Val::Array(f(&a)?),
            Val::Scalar(a) => Val::Scalar(f(&a)?),
        })
    }

    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Val::Array(a) => Box::new(a),
            Val::Scalar(a) => Box::new(Scalar::new(a)),
        }
    }

    fn into_array(self, rows: usize) -> Result<ArrayRef, ExprError> {
        match self {
            Val::Array(a) => Ok(a),
            Val::Scalar(a) => repeat(&a, rows),
        }
    }
}

/// One value repeated for `rows` rows.
fn repeat(a: &ArrayRef, rows: usize) -> Result<ArrayRef, ExprError> {
    let idx = arrow_array::UInt32Array::from(vec![0u32; rows]);
    arrow_select::take::take(a.as_ref(), &idx, None).map_err(eval_err)
}

fn lit_array(l: &Lit, to: &DataType) -> Result<ArrayRef, ExprError> {
    let one: ArrayRef = match l {
        Lit::Null => return Ok(new_null_array(to, 1)),
        Lit::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Lit::Int(i) => Arc::new(Int64Array::from(vec![*i])),
        Lit::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Lit::Str(s) if matches!(to, DataType::Timestamp(..)) => {
            let ms = weir_core::time::parse_rfc3339_ms(s)
                .ok_or_else(|| ExprError::Type(format!("{s:?} is not an RFC 3339 time")))?;
            Arc::new(TimestampMillisecondArray::from(vec![ms]).with_timezone("UTC"))
        }
        Lit::Str(s) => Arc::new(StringArray::from(vec![s.as_str()])),
    };
    coerce(one, to)
}

/// Brings a value to the operand type. A value that does not fit (an unsigned value above
/// `i64::MAX` made signed, text that is not a time) is an error, never a silent null.
fn coerce(a: ArrayRef, to: &DataType) -> Result<ArrayRef, ExprError> {
    if a.data_type() == to || matches!(to, DataType::Null) {
        return Ok(a);
    }
    let strict = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(&a, to, &strict).map_err(eval_err)
}

fn eval(n: &BNode, batch: &RecordBatch, want: &DataType) -> Result<Val, ExprError> {
    use arrow_arith::numeric;
    use arrow_ord::cmp;
    Ok(match n {
        BNode::Col(i, _) => Val::Array(coerce(batch.column(*i).clone(), want)?),
        BNode::Lit(l, _) => Val::Scalar(lit_array(l, want)?),
        BNode::Not(a) => eval(a, batch, &DataType::Boolean)?.map(|x| {
            Ok(Arc::new(arrow_arith::boolean::not(x.as_boolean()).map_err(eval_err)?) as ArrayRef)
        })?,
        BNode::Neg(a) => {
            let inner = if a.data_type().is_unsigned_integer() {
                DataType::Int64
            } else {
                want.clone()
            };
            eval(a, batch, &inner)?.map(|x| numeric::neg(x).map_err(eval_err))?
        }
        BNode::IsNull(a, negated) => {
            let inner_type = a.data_type();
            let v = eval(a, batch, &inner_type)?;
            let negated = *negated;
            v.map(|x| {
                let r = if negated {
                    arrow_arith::boolean::is_not_null(x)
                } else {
                    arrow_arith::boolean::is_null(x)
                };
                Ok(Arc::new(r.map_err(eval_err)?) as ArrayRef)
            })?
        }
        BNode::Binary {
            op,
            left,
            right,
            operand,
            ..
        } => {
            let l = eval(left, batch, operand)?;
            let r = eval(right, batch, operand)?;
            let both_scalar = matches!((&l, &r), (Val::Scalar(_), Val::Scalar(_)));
            let (ld, rd) = (l.datum(), r.datum());
            let (ld, rd): (&dyn Datum, &dyn Datum) = (ld.as_ref(), rd.as_ref());
            let out: ArrayRef = match op {
                Op::Add => numeric::add(ld, rd).map_err(eval_err)?,
                Op::Sub => numeric::sub(ld, rd).map_err(eval_err)?,
                Op::Mul => numeric::mul(ld, rd).map_err(eval_err)?,
                Op::Div => numeric::div(ld, rd).map_err(eval_err)?,
                Op::Rem => numeric::rem(ld, rd).map_err(eval_err)?,
                Op::Eq => Arc::new(cmp::eq(ld, rd).map_err(eval_err)?),
                Op::NotEq => Arc::new(cmp::neq(ld, rd).map_err(eval_err)?),
                Op::Lt => Arc::new(cmp::lt(ld, rd).map_err(eval_err)?),
                Op::LtEq => Arc::new(cmp::lt_eq(ld, rd).map_err(eval_err)?),
                Op::Gt => Arc::new(cmp::gt(ld, rd).map_err(eval_err)?),
                Op::GtEq => Arc::new(cmp::gt_eq(ld, rd).map_err(eval_err)?),
                Op::And | Op::Or => {
                    let rows = batch.num_rows();
                    let la = l.array().clone();
                    let ra = r.array().clone();
                    let la = if matches!(l, Val::Scalar(_)) {
                        Val::Scalar(la).into_array(rows)?
                    } else {
                        la
                    };
                    let ra = if matches!(r, Val::Scalar(_)) {
                        Val::Scalar(ra).into_array(rows)?
                    } else {
                        ra
                    };
                    let (lb, rb) = (la.as_boolean(), ra.as_boolean());
                    let res = if *op == Op::And {
                        arrow_arith::boolean::and_kleene(lb, rb)
                    } else {
                        arrow_arith::boolean::or_kleene(lb, rb)
                    };
                    return Ok(Val::Array(Arc::new(res.map_err(eval_err)?)));
                }
            };
            if both_scalar {
                Val::Scalar(out)
            } else {
                Val::Array(out)
            }
        }
    })
}

impl Bound {
    /// The type of the result.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// The expression's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates on every row of `batch` (which must have the bound schema).
    pub fn eval(&self, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        let want = self.node.data_type();
        eval(&self.node, batch, &want)?.into_array(batch.num_rows())
    }

    /// Evaluates a boolean expression into a filter mask: NULL counts as false.
    pub fn eval_mask(&self, batch: &RecordBatch) -> Result<BooleanArray, ExprError> {
        to_mask(&self.eval(batch)?, &self.text)
    }

    /// Evaluates on every row, and where a row's value cannot be computed (division by zero,
    /// an overflow, a value that does not fit a cast) makes that value null and reports the
    /// row with the reason, instead of failing the batch. Rows are evaluated one by one only
    /// in a batch that failed whole.
    pub fn eval_rows(&self, batch: &RecordBatch) -> Result<(ArrayRef, RowErrors), ExprError> {
        match self.eval(batch) {
            Ok(a) => Ok((a, Vec::new())),
            Err(ExprError::Eval(_)) => {
                let mut parts: Vec<ArrayRef> = Vec::with_capacity(batch.num_rows());
                let mut errors = Vec::new();
                for row in 0..batch.num_rows() {
                    match self.eval(&batch.slice(row, 1)) {
                        Ok(a) => parts.push(a),
                        Err(ExprError::Eval(why)) => {
                            parts.push(new_null_array(&self.data_type, 1));
                            errors.push((row, format!("evaluating `{}`: {why}", self.text)));
                        }
                        Err(e) => return Err(e),
                    }
                }
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                let all = arrow_select::concat::concat(&refs).map_err(eval_err)?;
                Ok((all, errors))
            }
            Err(e) => Err(e),
        }
    }

    /// [`Bound::eval_mask`] with the failing rows reported (their mask is false).
    pub fn eval_mask_rows(
        &self,
        batch: &RecordBatch,
    ) -> Result<(BooleanArray, RowErrors), ExprError> {
        let (a, errors) = self.eval_rows(batch)?;
        Ok((to_mask(&a, &self.text)?, errors))
    }
}

/// Rows whose value could not be computed: (row index in the batch, why).
pub type RowErrors = Vec<(usize, String)>;

fn to_mask(a: &ArrayRef, text: &str) -> Result<BooleanArray, ExprError> {
    let b = a
        .as_boolean_opt()
        .ok_or_else(|| ExprError::Type(format!("`{text}` is not a condition")))?;
    Ok(if b.null_count() == 0 {
        b.clone()
    } else {
        b.iter().map(|v| Some(v.unwrap_or(false))).collect()
    })
}

#[cfg(test)]
mod tests;
