//! The `union` stage: merges inputs of one schema into one stream.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use weir_core::{Emitter, Operator, Result};

/// Passes every batch of every input through; its watermark is the minimum over the inputs,
/// as for every stage.
pub struct Union {
    schema: SchemaRef,
}

impl Union {
    /// A union of inputs with `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        Union { schema }
    }
}

impl Operator for Union {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Emitter) -> Result<()> {
        out.data(batch.clone());
        Ok(())
    }
}
