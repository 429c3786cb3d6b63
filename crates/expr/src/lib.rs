//! weir-expr owns SQL expressions over record batches: `status >= 500`,
//! `type = 'DDOS' AND target_ip IS NOT NULL`, `path LIKE '/images/%'`,
//! `CASE WHEN status >= 500 THEN 1 ELSE 0 END`, `coalesce(bytes, 0)`, `lower(method) = 'get'`.
//!
//! An expression is parsed once ([`Expr::parse`]), bound to a schema ([`Expr::bind`]) and
//! evaluated a whole batch at a time ([`Bound::eval`]). Filters, computed keys and fields,
//! and alert conditions use it.
//!
//! Binding is DataFusion's, the engine behind `weir query`, so pipelines and queries speak
//! one SQL: its planner turns the text into a logical expression, its type coercion brings
//! operands to a common type (signed with unsigned 64-bit integers as exact decimals, a
//! string literal next to a timestamp as that time), its simplifier folds constants, and its
//! physical expressions evaluate with Arrow's kernels. Every scalar function of DataFusion's
//! library is there: strings (`lower`, `upper`, `concat`, `substr`, `split_part`, `trim`,
//! `starts_with`, …), regular expressions (`regexp_like`, `regexp_replace`, `regexp_match`),
//! date and time (`date_trunc`, `date_part`, `extract`, `to_timestamp`, …), math (`abs`,
//! `round`, `ln`, …) and `coalesce`, `nullif`, `CASE`, `LIKE`/`ILIKE`, `IN`, `BETWEEN`,
//! `CAST`. Aggregates (`count`, `sum`) belong to an aggregate stage and are refused here.
//! Column names are case-sensitive, as the pipeline file spells them; function names are not.
//!
//! weir adds what a stream needs on top:
//! - Integer arithmetic is checked: an overflow, a division by zero or a value that does not
//!   fit its cast fails that row only ([`Bound::eval_rows`] makes its value null and names the
//!   row and the reason; the operators send it to their `.errors` output).
//! - A divisor that is the literal zero, a literal that does not fit its cast, and an unknown
//!   column are refused when the expression is bound, before any data arrives (`weir check`).
//! - `now()` (`current_timestamp`), `current_date()` and `current_time()` read the clock at
//!   every batch; DataFusion fixes them at the start of a query, and a pipeline runs for months.
//! - Float division follows IEEE 754 (`x / 0.0` is infinite, `0.0 / 0.0` is NaN), and sinks
//!   print those as `"Infinity"`, `"-Infinity"` and `"NaN"`.
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

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, FieldRef, Schema};
use datafusion_common::config::ConfigOptions;
use datafusion_common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion_common::{DFSchema, DataFusionError, ScalarValue, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion_expr::{
    AggregateUDF, Cast, ColumnarValue, Expr as Logical, ExprSchemable, HigherOrderUDF, Operator,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TableSource,
    Volatility, WindowUDF,
};
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::expressions::BinaryExpr as PhysicalBinary;
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};
use datafusion_sql::sqlparser::ast;
use datafusion_sql::sqlparser::dialect::GenericDialect;
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::Token;

/// Errors of parsing, binding and evaluating expressions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a SQL expression.
    #[error("{0}")]
    Syntax(String),
    /// The expression does not fit the schema (unknown column or function, wrong types).
    #[error("{0}")]
    Type(String),
    /// Evaluation failed on data (e.g. division by zero).
    #[error("{0}")]
    Eval(String),
}

/// A parsed expression, not yet bound to a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    ast: ast::Expr,
    /// The column, when the expression is just a (possibly dotted) column name.
    column: Option<String>,
    text: String,
}

fn syntax(msg: impl Into<String>) -> ExprError {
    ExprError::Syntax(msg.into())
}

/// DataFusion's message without its category prefix where the category adds nothing for a
/// pipeline author ("Arrow error: Divide by zero error" reads "Divide by zero error").
fn message(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::ArrowError(a, _) => a.to_string(),
        DataFusionError::Plan(m)
        | DataFusionError::Execution(m)
        | DataFusionError::NotImplemented(m) => m.clone(),
        DataFusionError::SchemaError(s, _) => s.to_string(),
        other => other.strip_backtrace(),
    }
}

/// Runs `f` on a parser of `text` and requires that it consumed all of it.
fn parse_whole<T>(
    text: &str,
    f: impl FnOnce(&mut Parser<'_>) -> Result<T, datafusion_sql::sqlparser::parser::ParserError>,
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

/// The column an identifier names: `a.b` is the column "a.b" (weir's schemas are flat), also
/// where the parser reads `user.id` as a field of the function `USER`.
fn column_name(e: &ast::Expr) -> Option<String> {
    let part = |e: &ast::Expr| match e {
        ast::Expr::Identifier(id) => Some(id.value.clone()),
        ast::Expr::Function(f) if matches!(f.args, ast::FunctionArguments::None) => {
            match f.name.0.as_slice() {
                [ast::ObjectNamePart::Identifier(id)] => Some(id.value.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    match e {
        ast::Expr::Identifier(id) => Some(id.value.clone()),
        ast::Expr::CompoundIdentifier(ids) => Some(
            ids.iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        ast::Expr::CompoundFieldAccess { root, access_chain } => {
            let mut name = column_name(root).or_else(|| part(root))?;
            for a in access_chain {
                match a {
                    ast::AccessExpr::Dot(e) => {
                        name.push('.');
                        name.push_str(&part(e)?);
                    }
                    ast::AccessExpr::Subscript(_) => return None,
                }
            }
            Some(name)
        }
        _ => None,
    }
}

/// Every dotted column name becomes one quoted identifier, so DataFusion's planner reads the
/// column "user.id" instead of a column of a table `user`.
fn flatten_names(mut ast: ast::Expr) -> ast::Expr {
    let _ = ast::visit_expressions_mut(&mut ast, |e| {
        if matches!(
            e,
            ast::Expr::CompoundIdentifier(_) | ast::Expr::CompoundFieldAccess { .. }
        ) {
            if let Some(name) = column_name(e) {
                *e = ast::Expr::Identifier(ast::Ident::with_quote('"', name));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    ast
}

impl Expr {
    fn new(ast: ast::Expr, text: String) -> Expr {
        let ast = match flatten_names(ast) {
            ast::Expr::Nested(inner) if column_name(&inner).is_some() => *inner,
            other => other,
        };
        Expr {
            column: column_name(&ast),
            ast,
            text,
        }
    }

    /// Parses SQL expression text.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let ast = parse_whole(text, |p| p.parse_expr())?;
        Ok(Expr::new(ast, text.trim().to_string()))
    }

    /// Parses `expression` or `expression AS name`; returns the name too when one is given.
    pub fn parse_aliased(text: &str) -> Result<(Expr, Option<String>), ExprError> {
        let item = parse_whole(text, |p| p.parse_select_item())?;
        match item {
            ast::SelectItem::UnnamedExpr(e) => Ok((Expr::new(e, text.trim().to_string()), None)),
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let text = expr.to_string();
                Ok((Expr::new(expr, text), Some(alias.value)))
            }
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
        self.column.as_deref()
    }

    /// Columns the expression reads.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        let _ = ast::visit_expressions(&self.ast, |e| {
            if let Some(c) = column_name(e) {
                out.push(c);
            }
            ControlFlow::<()>::Continue(())
        });
        out.sort();
        out.dedup();
        out
    }

    /// Resolves columns and functions against `schema`, checks and coerces types, and plans
    /// the evaluation.
    pub fn bind(&self, schema: &Schema) -> Result<Bound, ExprError> {
        for c in self.columns() {
            if schema.index_of(&c).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(ExprError::Type(format!(
                    "no column {c:?}; the input has {}",
                    names.join(", ")
                )));
            }
        }
        let type_err = |e: DataFusionError| ExprError::Type(message(&e));
        let df_schema = Arc::new(DFSchema::try_from(schema.clone()).map_err(type_err)?);
        let library = Library::get();
        let planner = SqlToRel::new_with_options(library, library.parser_options());
        let logical = planner
            .sql_to_expr(self.ast.clone(), &df_schema, &mut PlannerContext::new())
            .map_err(type_err)?;
        refuse_aggregates(&logical)?;
        let logical = integral_arithmetic(logical, &df_schema).map_err(type_err)?;
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(Arc::clone(&df_schema))
                .with_config_options(Arc::clone(&library.options))
                .build(),
        );
        let logical = simplifier
            .coerce(logical, &df_schema)
            .and_then(|e| simplifier.simplify(e))
            .map_err(type_err)?;
        check_literals(&logical, &df_schema)?;
        let physical = plan(&logical, &df_schema).map_err(type_err)?;
        let physical = checked_arithmetic(physical).map_err(type_err)?;
        let data_type = physical.data_type(schema).map_err(type_err)?;
        Ok(Bound {
            physical,
            data_type,
            text: self.text.clone(),
        })
    }
}

/// DataFusion computes a 64-bit unsigned integer with a signed one as a decimal, so
/// `bytes / 1024` would have four decimal places and `coalesce(bytes, 0)` would be a
/// `Decimal128(20, 0)`. weir keeps integer arithmetic integral, as SQL does: where operands
/// (of `+ - * / %`) or alternatives (of `coalesce`, `nullif`, `greatest`, `least`, `CASE`)
/// mix a `UInt64` with a signed integer, the unsigned ones are cast to `Int64` (a value above
/// `i64::MAX` fails its row). Comparisons, which DataFusion keeps exact for every value of
/// both, are left alone.
fn integral_arithmetic(e: Logical, schema: &DFSchema) -> Result<Logical, DataFusionError> {
    /// Casts the `UInt64` members of `items` to `Int64` if others are signed integers.
    fn unify(items: &mut [&mut Logical], schema: &DFSchema) -> Result<bool, DataFusionError> {
        let types = items
            .iter()
            .map(|e| e.get_type(schema))
            .collect::<Result<Vec<_>, _>>()?;
        let signed = types
            .iter()
            .any(|t| t.is_integer() && !t.is_unsigned_integer());
        let mut changed = false;
        for (e, t) in items.iter_mut().zip(&types) {
            if signed && *t == DataType::UInt64 {
                let inner = std::mem::replace(&mut **e, Logical::Literal(ScalarValue::Null, None));
                **e = Logical::Cast(Cast::new(Box::new(inner), DataType::Int64));
                changed = true;
            }
        }
        Ok(changed)
    }
    e.transform_up(|mut n| {
        let changed = match &mut n {
            Logical::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Plus
                        | Operator::Minus
                        | Operator::Multiply
                        | Operator::Divide
                        | Operator::Modulo
                ) =>
            {
                unify(&mut [&mut *b.left, &mut *b.right], schema)?
            }
            Logical::ScalarFunction(f)
                if matches!(f.name(), "coalesce" | "nullif" | "greatest" | "least") =>
            {
                unify(&mut f.args.iter_mut().collect::<Vec<_>>(), schema)?
            }
            Logical::Case(c) => {
                let mut items: Vec<&mut Logical> =
                    c.when_then_expr.iter_mut().map(|(_, t)| &mut **t).collect();
                items.extend(c.else_expr.as_deref_mut());
                unify(&mut items, schema)?
            }
            _ => false,
        };
        Ok(if changed {
            Transformed::yes(n)
        } else {
            Transformed::no(n)
        })
    })
    .map(|t| t.data)
}

fn plan(logical: &Logical, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>, DataFusionError> {
    create_physical_expr(
        logical,
        schema,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )
}

/// An aggregate inside a row expression is a planning mistake: say where aggregates go.
fn refuse_aggregates(e: &Logical) -> Result<(), ExprError> {
    let mut found = None;
    e.apply(|n| {
        Ok(match n {
            Logical::AggregateFunction(f) => {
                found = Some(f.func.name().to_string());
                TreeNodeRecursion::Stop
            }
            Logical::WindowFunction(_) => {
                found = Some("a window function".into());
                TreeNodeRecursion::Stop
            }
            _ => TreeNodeRecursion::Continue,
        })
    })
    .map_err(|e| ExprError::Type(message(&e)))?;
    match found {
        Some(f) => Err(ExprError::Type(format!(
            "`{f}` is an aggregate: a row expression cannot use it (an aggregate stage's \
             `aggregates` computes it per window)"
        ))),
        None => Ok(()),
    }
}

/// Refuses, before any data arrives, what would fail on every row: a divisor that is the
/// literal zero, and a literal that does not fit its cast (`ts > 'yesterday'`).
fn check_literals(e: &Logical, schema: &DFSchema) -> Result<(), ExprError> {
    let mut err = None;
    e.apply(|n| {
        match n {
            Logical::BinaryExpr(b)
                if matches!(b.op, Operator::Divide | Operator::Modulo)
                    && is_literal_zero(&b.right) =>
            {
                err = Some(ExprError::Type(
                    "division by zero (the divisor is the literal 0)".into(),
                ));
            }
            Logical::Cast(c) if matches!(*c.expr, Logical::Literal(..)) => {
                let out = plan(n, schema).and_then(|p| {
                    let one = RecordBatch::try_new_with_options(
                        Arc::new(Schema::empty()),
                        vec![],
                        &arrow_array::RecordBatchOptions::new().with_row_count(Some(1)),
                    )?;
                    p.evaluate(&one)
                });
                if let Err(e) = out {
                    err = Some(ExprError::Type(format!("`{n}`: {}", message(&e))));
                }
            }
            _ => {}
        }
        Ok(if err.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .map_err(|e| ExprError::Type(message(&e)))?;
    err.map_or(Ok(()), Err)
}

fn is_literal_zero(e: &Logical) -> bool {
    match e {
        Logical::Literal(v, _) => {
            !v.is_null() && ScalarValue::new_zero(&v.data_type()).is_ok_and(|zero| zero == *v)
        }
        Logical::Cast(c) => is_literal_zero(&c.expr),
        Logical::TryCast(c) => is_literal_zero(&c.expr),
        _ => false,
    }
}

/// DataFusion's `+ - *` wrap around on integer overflow unless asked not to; a wrapped sum
/// is a wrong answer, so every one is checked (and fails only its row, see `eval_rows`).
fn checked_arithmetic(p: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>, DataFusionError> {
    p.transform_up(|n| {
        let Some(b) = n.downcast_ref::<PhysicalBinary>() else {
            return Ok(Transformed::no(n));
        };
        if !matches!(
            b.op(),
            Operator::Plus | Operator::Minus | Operator::Multiply
        ) {
            return Ok(Transformed::no(n));
        }
        let checked = PhysicalBinary::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()))
            .with_fail_on_overflow(true);
        Ok(Transformed::yes(Arc::new(checked) as Arc<dyn PhysicalExpr>))
    })
    .map(|t| t.data)
}

/// DataFusion's scalar functions and SQL planners, built once for the process.
struct Library {
    functions: HashMap<String, Arc<ScalarUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: Arc<ConfigOptions>,
}

impl Library {
    fn get() -> &'static Library {
        static LIBRARY: OnceLock<Library> = OnceLock::new();
        LIBRARY.get_or_init(|| {
            let mut functions = HashMap::new();
            for f in datafusion_functions::all_default_functions() {
                let f = WallClock::wrap(f);
                for name in std::iter::once(f.name()).chain(f.aliases().iter().map(|a| a.as_str()))
                {
                    functions.insert(name.to_ascii_lowercase(), Arc::clone(&f));
                }
            }
            Library {
                functions,
                planners: vec![
                    Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
                    Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
                    Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
                ],
                options: Arc::new(ConfigOptions::default()),
            }
        })
    }

    /// Column names as written (no lower-casing: `Status` is not `status`), and strings stay
    /// `Utf8`, the type weir's parsers and sinks use.
    fn parser_options(&self) -> ParserOptions {
        ParserOptions::new()
            .with_enable_ident_normalization(false)
            .with_map_string_types_to_utf8view(false)
    }
}

impl ContextProvider for Library {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        Err(DataFusionError::Plan(format!(
            "`{name}`: an expression reads the columns of its own input, not a table"
        )))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(&name.to_ascii_lowercase()).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `now()`, `current_date()` and `current_time()` are, in DataFusion, the start of a query,
/// folded into a constant when it is planned. A pipeline runs for months: here they read the
/// clock each time a batch is evaluated (one value for the whole batch).
#[derive(Debug, PartialEq, Eq, Hash)]
struct WallClock {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl WallClock {
    fn wrap(f: Arc<ScalarUDF>) -> Arc<ScalarUDF> {
        if !matches!(f.name(), "now" | "current_date" | "current_time") {
            return f;
        }
        let signature = Signature::new(f.signature().type_signature.clone(), Volatility::Volatile);
        Arc::new(ScalarUDF::new_from_impl(WallClock {
            inner: f,
            signature,
        }))
    }
}

impl ScalarUDFImpl for WallClock {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion_common::Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> datafusion_common::Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion_common::Result<ColumnarValue> {
        let now = SimplifyContext::builder()
            .with_config_options(args.config_options)
            .with_current_time()
            .build();
        match self.inner.simplify(Vec::new(), &now)? {
            ExprSimplifyResult::Simplified(Logical::Literal(v, _)) => Ok(ColumnarValue::Scalar(v)),
            _ => Err(DataFusionError::Internal(format!(
                "{}() did not give a time",
                self.name()
            ))),
        }
    }
}

/// An expression bound to a schema, ready to evaluate on its batches.
#[derive(Debug, Clone)]
pub struct Bound {
    physical: Arc<dyn PhysicalExpr>,
    data_type: DataType,
    text: String,
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
        self.physical
            .evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .map_err(|e| ExprError::Eval(message(&e)))
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
                let all = arrow_select::concat::concat(&refs)
                    .map_err(|e| ExprError::Eval(e.to_string()))?;
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
    // NULL as false, word by word in Arrow's kernel (no per-row loop in this crate, which
    // is built at opt-level 1: see the release profile).
    Ok(if b.null_count() == 0 {
        b.clone()
    } else {
        arrow_select::filter::prep_null_mask_filter(b)
    })
}

#[cfg(test)]
mod tests;
