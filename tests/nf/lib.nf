//
// Inputs of the module harnesses, from the --cohort and --results folders (see nextflow.config)
//
def cohortFile(String name) {
    return file("${params.cohort}/${name}", checkIfExists: true)
}

def resultFiles(String pattern) {
    def found = files("${params.results}/${pattern}", checkIfExists: true)
    return found.sort { it.name }
}

def gtfTuple() {
    return [[id: 'genes'], cohortFile('genes.gtf')]
}

def fastaTuple() {
    return [[id: 'genome'], cohortFile('genome.fa')]
}

// rows of the cohort's samplesheet for the selected samples: [ meta, [ R1 (, R2) ] ] with the FASTQ
// paths (relative to the sheet) or the result files of a stage (per sample, by name)
def sampleMetas() {
    def wanted = params.samples.toString().tokenize(',')*.trim()
    def rows = cohortFile('samplesheet.csv').splitCsv(header: true, strip: true)
    def metas = rows.findAll { it.sample in wanted }.collect { row ->
        [id: row.sample, single_end: !row.fastq_2, strandedness: row.strandedness,
         fastq: [row.fastq_1, row.fastq_2].findAll { it }.collect { cohortFile(it) }]
    }
    if (metas.size() != wanted.size()) {
        error("harness: --samples ${params.samples}: not all in ${params.cohort}/samplesheet.csv")
    }
    return metas
}

def sampleMeta(Map m) {
    return m.findAll { k, v -> k != 'fastq' }
}
